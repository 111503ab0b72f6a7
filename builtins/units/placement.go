package units

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/fleet"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/lang/state"
	"github.com/kumo-dev/kumo/providers"
)

var placementBuiltin = &builtins.Def{
	Name: "placement",
	Doc: `placement(candidates, minimize="cost", prefer=[], max_price_hour=None, block_for="10m")
Returns a choice among candidate specs, usable as create_unit's spec:
the unit goes to the first candidate in the ranking that has room for
all its nodes. The ranking puts the providers named in prefer first (in
that order), then the rest by price per node-hour (minimize="cost",
from the catalog and ~/.config/kumo/flavors.yaml; providers without a
price, on-prem and containers, cost nothing), ties in the order given;
candidates dearer than max_price_hour are left out. A candidate that
answers that it has no room (EC2's InsufficientInstanceCapacity,
InstanceLimitExceeded or VcpuLimitExceeded, Nova's "No valid host was
found", an on-prem pool without free hosts) gives back what it made and
the next is tried, saying so; any other error (credentials, a bad image)
stops at once. A candidate that had no room is recorded in the state and
asked last, after every other, for block_for ("0s": never, and blocks
recorded before are not heeded). .ranking
lists each candidate with its price and why it is where it is.`,
	Fn: placementFn,
}

// A Placement is a ranked choice of specs.
type Placement struct {
	Ranked  []*Spec
	Prices  []float64
	Reasons []string // per ranked candidate: why it is there
	Left    []string // candidates left out, and why
	// BlockFor is how long a candidate that had no room is asked last.
	BlockFor time.Duration
	frozen   bool
}

func placementFn(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var candidates *starlark.List
	minimize := "cost"
	var prefer starlark.Value = starlark.NewList(nil)
	var maxPrice, blockArg starlark.Value = starlark.None, starlark.String("10m")
	if err := builtins.Unpack(b, args, kwargs, "candidates", &candidates, "minimize?", &minimize, "prefer?", &prefer, "max_price_hour?", &maxPrice, "block_for?", &blockArg); err != nil {
		return nil, err
	}
	var blockFor builtins.Duration
	if err := blockFor.Unpack(blockArg); err != nil {
		if _, isStr := blockArg.(starlark.String); isStr {
			return nil, builtins.Inputf(b, "block_for=%s: want a duration such as \"10m\", or \"0s\" for none", blockArg)
		}
		return nil, builtins.Inputf(b, "for parameter block_for: %v", err)
	}
	if minimize != "cost" {
		return nil, builtins.Inputf(b, "minimize=%q: kumo minimizes \"cost\"", minimize)
	}
	env, err := builtins.FromThread(thread)
	if err != nil {
		return nil, err
	}
	limit := -1.0 // none
	if maxPrice != starlark.None {
		f, ok := starlark.AsFloat(maxPrice)
		if !ok {
			return nil, builtins.Inputf(b, "for parameter max_price_hour: got %s, want float or None", maxPrice.Type())
		}
		if f < 0 {
			return nil, builtins.Inputf(b, "max_price_hour=%s: want a price per hour of 0 or more", maxPrice)
		}
		limit = f
	}
	prefs, err := builtins.Strings(b, "prefer", prefer)
	if err != nil {
		return nil, err
	}
	if candidates.Len() == 0 {
		return nil, builtins.Inputf(b, "no candidates: give a list of spec(...)")
	}
	type candidate struct {
		spec  *Spec
		price float64
		pref  int // index in prefer, or len(prefer)
		order int
	}
	var list []candidate
	p := &Placement{BlockFor: blockFor.D()}
	for i := 0; i < candidates.Len(); i++ {
		sp, ok := candidates.Index(i).(*Spec)
		if !ok {
			return nil, builtins.Inputf(b, "for parameter candidates: item %d: got %s, want spec", i, candidates.Index(i).Type())
		}
		c := candidate{spec: sp, price: priceOf(env, sp), pref: len(prefs), order: i}
		for j, name := range prefs {
			if name == sp.Provider {
				c.pref = j
				break
			}
		}
		if limit >= 0 && c.price > limit {
			p.Left = append(p.Left, fmt.Sprintf("%s: %s/h is over max_price_hour %s/h", sp.label(), money(c.price), money(limit)))
			continue
		}
		list = append(list, c)
	}
	if len(list) == 0 {
		return nil, builtins.Inputf(b, "every candidate costs more than max_price_hour: %s", strings.Join(p.Left, "; "))
	}
	sort.SliceStable(list, func(i, j int) bool {
		if list[i].pref != list[j].pref {
			return list[i].pref < list[j].pref
		}
		return list[i].price < list[j].price
	})
	for _, c := range list {
		why := "by price"
		if c.pref < len(prefs) {
			why = "preferred"
		}
		p.Ranked, p.Prices, p.Reasons = append(p.Ranked, c.spec), append(p.Prices, c.price), append(p.Reasons, why)
	}
	return p, nil
}

func (s *Spec) label() string { return s.Provider + "/" + s.Flavor }

// candidateKey names a spec in capacity blocks: its provider, flavor and
// every field (a region, an instance type), digested.
func candidateKey(s *Spec) string {
	fs, err := s.Fleet()
	if err != nil {
		return s.label()
	}
	sum := sha256.Sum256(fs.JSON())
	return s.label() + "@" + hex.EncodeToString(sum[:8])
}

func money(f float64) string {
	if f == 0 {
		return "$0"
	}
	return fmt.Sprintf("$%.4f", f)
}

// Ranking is one line per candidate: rank, spec, price, why.
func (p *Placement) Ranking() []string {
	var out []string
	for i, sp := range p.Ranked {
		out = append(out, fmt.Sprintf("%d. %s %s/h (%s)", i+1, sp.label(), money(p.Prices[i]), p.Reasons[i]))
	}
	for _, l := range p.Left {
		out = append(out, "left out: "+l)
	}
	return out
}

func (p *Placement) String() string {
	return "placement(" + strings.Join(p.Ranking(), "; ") + ")"
}
func (p *Placement) Type() string          { return "placement" }
func (p *Placement) Freeze()               { p.frozen = true }
func (p *Placement) Truth() starlark.Bool  { return starlark.True }
func (p *Placement) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: placement") }
func (p *Placement) AttrNames() []string   { return []string{"candidates", "ranking"} }
func (p *Placement) Attr(name string) (starlark.Value, error) {
	switch name {
	case "candidates":
		var l []starlark.Value
		for _, sp := range p.Ranked {
			l = append(l, sp)
		}
		return starlark.NewList(l), nil
	case "ranking":
		var l []starlark.Value
		for _, r := range p.Ranking() {
			l = append(l, starlark.String(r))
		}
		return starlark.NewList(l), nil
	}
	return nil, nil
}

// placeUnit creates the unit on the first candidate with room for all
// its nodes. A unit that exists already (a resumed run) stays on the
// candidate it is on, or, if that one had no room, goes on to the next.
func placeUnit(thread *starlark.Thread, b *starlark.Builtin, eng *fleet.Engine, call fleet.Call, group, name string, p *Placement, nodes int, create func(fleet.Spec) (state.Resource, error)) (state.Resource, error) {
	env, err := builtins.FromThread(thread)
	if err != nil {
		return state.Resource{}, err
	}
	start, on := 0, -1 // on: the candidate the unit is on already
	if u, err := eng.Unit(group, name); err == nil {
		if have, err := fleet.DecodeSpec(u.Spec); err == nil {
			for i, sp := range p.Ranked {
				if fs, err := sp.Fleet(); err == nil && fs.Equal(have) {
					start, on = i, i
				}
			}
		}
	}
	// Candidates that had no room a while ago are asked last.
	var order, blocked []int
	for i := start; i < len(p.Ranked); i++ {
		if blk, ok, _ := env.Store.Blocked(candidateKey(p.Ranked[i]), time.Now()); ok && i != on && p.BlockFor > 0 {
			env.Note(fmt.Sprintf("%s/%s: %s had no room at %s: asked last until %s", group, name, blk.Label, blk.Since.Format("15:04"), blk.Until.Format("15:04")))
			blocked = append(blocked, i)
			continue
		}
		order = append(order, i)
	}
	order = append(order, blocked...)
	var full []string
	for k, i := range order {
		sp := p.Ranked[i]
		spec, err := sp.Fleet()
		if err != nil {
			return state.Resource{}, builtins.Inputf(b, "%s: %v", sp.label(), err)
		}
		u, err := create(spec)
		if err == nil {
			if i > 0 || len(full) > 0 {
				env.Note(fmt.Sprintf("%s/%s: placed on %s (%s/h), candidate %d", group, name, sp.label(), money(p.Prices[i]), i+1))
			}
			return u, nil
		}
		if !providers.IsCapacity(err) {
			return state.Resource{}, err
		}
		full = append(full, fmt.Sprintf("%s: %v", sp.label(), err))
		if p.BlockFor > 0 {
			at := time.Now()
			if berr := env.Store.BlockCandidate(state.Block{Candidate: candidateKey(sp), Label: sp.label(), Reason: err.Error(), Since: at, Until: at.Add(p.BlockFor)}); berr != nil {
				return state.Resource{}, berr
			}
		}
		// What the full candidate made goes back before the next is asked.
		if derr := eng.DeleteUnit(lang.Context(thread), call, group, name); derr != nil {
			return state.Resource{}, fmt.Errorf("%s had no room (%v), and giving back what it made failed: %w", sp.label(), err, derr)
		}
		if k+1 < len(order) {
			env.Note(fmt.Sprintf("%s/%s: no room on %s for %d nodes: trying %s", group, name, sp.label(), nodes, p.Ranked[order[k+1]].label()))
		}
	}
	return state.Resource{}, &providers.CapacityError{Err: fmt.Errorf("no candidate had room for %d nodes:\n  %s\nrun the same command again later, or add candidates", nodes, strings.Join(full, "\n  "))}
}
