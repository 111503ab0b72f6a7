package runner

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/state"
)

// A unit group or unit value is a handle: the world it names can change
// while the value stays the same (a create_unit cell run again with more
// nodes returns the same unit). So a cell that reads a handle, directly
// or through a function, a list or a struct, also depends on what the
// earlier cells made, kept or deleted in it: when that changed (another
// node made, one deleted), the cell runs live too; an earlier cell run
// again that finds what it made before changes nothing. Only earlier
// cells count: what the cell itself or later cells do to the unit does
// not make it run again, so an unchanged recipe still replays whole.

// scope is a handle's part of the world: a group, or a unit of it.
type scope struct{ group, unit string }

func (s scope) String() string {
	if s.unit == "" {
		return "unit group " + s.group
	}
	return "unit " + s.group + "/" + s.unit
}

// worldKey is the input key under which a cell's world dependency is
// recorded.
const worldKey = "world"

// noteHandle records, while inputs are digested, a handle the cell reads.
func (d *digester) noteHandle(v starlark.Value) {
	if h, ok := v.(builtins.Handle); ok && d.handles != nil {
		g, u := h.Scope()
		d.handles[scope{g, u}] = true
	}
}

// effects returns what each cell record made and deleted, read once and
// again after a cell ran live.
func (p *pass) effects() map[int64]state.CellEffects {
	if p.effectsCache == nil {
		e, err := p.r.store.Effects(p.r.opts.Run)
		if err != nil {
			p.r.events.notice("could not read what the cells made: " + err.Error())
			e = map[int64]state.CellEffects{}
		}
		p.effectsCache = e
	}
	return p.effectsCache
}

// worldInput is the world dependency of cell idx on the handles it reads:
// per earlier cell with effects on them, a digest of those effects ("ID=
// digest,...", "" when there are none). p.worldCells keeps, by cell
// record, which handles each one touched, to say why the cell runs.
func (p *pass) worldInput(idx int, handles map[scope]bool) string {
	p.worldCells = map[int64][]string{}
	if len(handles) == 0 {
		return ""
	}
	effects := p.effects()
	var earlier []int
	for i := range p.r.records {
		if i < idx {
			earlier = append(earlier, i)
		}
	}
	sort.Ints(earlier)
	var entries []string
	for _, i := range earlier {
		rec := p.r.records[i]
		var touched, effs []string
		for s := range handles {
			if e := within(effects[rec.ID], s); len(e) > 0 {
				touched = append(touched, s.String())
				effs = append(effs, e...)
			}
		}
		if len(touched) > 0 {
			sort.Strings(touched)
			sort.Strings(effs)
			p.worldCells[rec.ID] = touched
			sum := sha256.Sum256([]byte(strings.Join(effs, ",")))
			entries = append(entries, fmt.Sprintf("%d=%s", rec.ID, hex.EncodeToString(sum[:6])))
		}
	}
	return strings.Join(entries, ",")
}

// within lists a cell's effects in scope s: "+token" made or kept,
// "-token" deleted.
func within(e state.CellEffects, s scope) []string {
	var out []string
	for _, x := range e.Made {
		if x.In(s.group, s.unit) {
			out = append(out, "+"+x.Token+x.Detail)
		}
	}
	for _, x := range e.Deleted {
		if x.In(s.group, s.unit) {
			out = append(out, "-"+x.Token)
		}
	}
	return out
}

// worldReason says which earlier cells changed what the cell uses:
// "cell 1 "Machines" ran, which changed unit web/w".
func (p *pass) worldReason(recorded, now string) string {
	before := strings.Split(recorded, ",")
	var parts []string
	for _, entry := range strings.Split(now, ",") {
		if entry == "" || slices.Contains(before, entry) {
			continue
		}
		var id int64
		fmt.Sscanf(entry, "%d=", &id)
		for i, rec := range p.r.records {
			if rec.ID == id && i < len(p.r.opts.Recipe.Cells) {
				parts = append(parts, fmt.Sprintf("%s ran, which changed %s", p.r.opts.Recipe.Cells[i].Name(), strings.Join(p.worldCells[id], ", ")))
			}
		}
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "what it uses changed in the world"
	}
	return strings.Join(parts, "; ")
}
