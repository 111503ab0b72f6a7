package units

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/fleet"
	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/state"
)

var placementBuiltin = &builtins.Def{
	Name: "placement",
	Doc: `placement(candidates, minimize="cost", prefer=[], max_price_hour=None, block_for="10m", spread=False)
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
recorded before are not heeded). With spread=True a unit may span
candidates: each takes what it has room for, in the ranking's order, and
the rest go to the next; nodes already made stay where they are, and a
unit that shrinks gives back from the last-ranked candidates first. A
spread unit that no candidate has room for keeps what it got, and the
cell fails; run it again to make the rest. .ranking lists each candidate
with its price and why it is where it is.`,
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
	// Spread lets a unit span candidates.
	Spread bool
	frozen bool
}

func placementFn(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var candidates *starlark.List
	minimize := "cost"
	var prefer starlark.Value = starlark.NewList(nil)
	var maxPrice, blockArg starlark.Value = starlark.None, starlark.String("10m")
	spread := false
	if err := builtins.Unpack(b, args, kwargs, "candidates", &candidates, "minimize?", &minimize, "prefer?", &prefer, "max_price_hour?", &maxPrice, "block_for?", &blockArg, "spread?", &spread); err != nil {
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
	p := &Placement{BlockFor: blockFor.D(), Spread: spread}
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
	return p.ranking(nil)
}

// ranking is Ranking with, for the candidates in blocked, since when
// they had no room and until when they are asked last.
func (p *Placement) ranking(blocked map[int]state.Block) []string {
	var out []string
	for i, sp := range p.Ranked {
		why := p.Reasons[i]
		if blk, ok := blocked[i]; ok {
			why += fmt.Sprintf("; no room at %s: asked last until %s", blk.Since.Format("15:04"), blk.Until.Format("15:04"))
		}
		out = append(out, fmt.Sprintf("%d. %s %s/h (%s)", i+1, sp.label(), money(p.Prices[i]), why))
	}
	for _, l := range p.Left {
		out = append(out, "left out: "+l)
	}
	return out
}

func (p *Placement) String() string {
	spread := ""
	if p.Spread {
		spread = "; spread"
	}
	return "placement(" + strings.Join(p.Ranking(), "; ") + spread + ")"
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
func placeUnit(thread *starlark.Thread, b *starlark.Builtin, eng *fleet.Engine, call fleet.Call, group, name string, p *Placement, nodes int, create func(fleet.Spec) (fleet.Unit, error)) (fleet.Unit, error) {
	env, err := builtins.FromThread(thread)
	if err != nil {
		return fleet.Unit{}, err
	}
	start, on := 0, -1 // on: the candidate the unit is on already
	if u, err := eng.Unit(group, name); err == nil {
		if have, err := u.Spec(); err == nil {
			for i, sp := range p.Ranked {
				if fs, err := sp.Fleet(); err == nil && fs.Equal(have) {
					start, on = i, i
				}
			}
		}
	}
	order := p.askOrder(env, group, name, start, func(i int) bool { return i == on })
	var full []string
	for k, i := range order {
		sp := p.Ranked[i]
		spec, err := sp.Fleet()
		if err != nil {
			return fleet.Unit{}, builtins.Inputf(b, "%s: %v", sp.label(), err)
		}
		u, err := create(spec)
		if err == nil {
			if i > 0 || len(full) > 0 {
				env.Note(fmt.Sprintf("%s/%s: placed on %s (%s/h), candidate %d", group, name, sp.label(), money(p.Prices[i]), i+1))
			}
			return u, nil
		}
		if !providers.IsCapacity(err) {
			return fleet.Unit{}, err
		}
		full = append(full, fmt.Sprintf("%s: %v", sp.label(), err))
		if berr := p.block(env, sp, err); berr != nil {
			return fleet.Unit{}, berr
		}
		// What the full candidate made goes back before the next is asked.
		if derr := eng.DeleteUnit(starkit.Context(thread), call, group, name); derr != nil {
			return fleet.Unit{}, fmt.Errorf("%s had no room (%v), and giving back what it made failed: %w", sp.label(), err, derr)
		}
		if k+1 < len(order) {
			env.Note(fmt.Sprintf("%s/%s: no room on %s for %d nodes: trying %s", group, name, sp.label(), nodes, p.Ranked[order[k+1]].label()))
		}
	}
	return fleet.Unit{}, &providers.CapacityError{Err: fmt.Errorf("no candidate had room for %d nodes:\n  %s\nrun the same command again later, or add candidates", nodes, strings.Join(full, "\n  "))}
}

// askOrder is the order candidates from start on are asked in: the
// ranking's, but those that had no room a while ago last, saying so
// (unless keep says the unit has nodes there already).
func (p *Placement) askOrder(env *builtins.Env, group, name string, start int, keep func(i int) bool) []int {
	var order, blocked []int
	for i := start; i < len(p.Ranked); i++ {
		if blk, ok, _ := env.Store.Blocked(candidateKey(p.Ranked[i]), time.Now()); ok && !keep(i) && p.BlockFor > 0 {
			env.Note(fmt.Sprintf("%s/%s: %s had no room at %s: asked last until %s", group, name, blk.Label, blk.Since.Format("15:04"), blk.Until.Format("15:04")))
			blocked = append(blocked, i)
			continue
		}
		order = append(order, i)
	}
	return append(order, blocked...)
}

// planned is what kumo plan says of the placement: its ranking with the
// blocks the state holds now, and the candidate it would ask first.
func (p *Placement) planned(env *builtins.Env) ([]string, int) {
	blocked := map[int]state.Block{}
	first := -1
	for i, sp := range p.Ranked {
		if blk, ok, _ := env.Store.Blocked(candidateKey(sp), time.Now()); ok && p.BlockFor > 0 {
			blocked[i] = blk
		} else if first < 0 {
			first = i
		}
	}
	if first < 0 {
		first = 0
	}
	return p.ranking(blocked), first
}

// block records that candidate sp had no room, for BlockFor.
func (p *Placement) block(env *builtins.Env, sp *Spec, err error) error {
	if p.BlockFor <= 0 {
		return nil
	}
	at := time.Now()
	return env.Store.BlockCandidate(state.Block{Candidate: candidateKey(sp), Label: sp.label(), Reason: err.Error(), Since: at, Until: at.Add(p.BlockFor)})
}

// counts is what placing starts from: the candidates as fleet specs, how
// many nodes the call has in the unit on each, and on other specs.
func (p *Placement) counts(b *starlark.Builtin, eng *fleet.Engine, call fleet.Call, group, name string) ([]fleet.Spec, []int, int, error) {
	specs := make([]fleet.Spec, len(p.Ranked))
	for i, sp := range p.Ranked {
		var err error
		if specs[i], err = sp.Fleet(); err != nil {
			return nil, nil, 0, builtins.Inputf(b, "%s: %v", sp.label(), err)
		}
	}
	have, others, err := eng.PartCounts(call, group, name, specs)
	return specs, have, others, err
}

// spreadUnit places a unit of nodes nodes over the candidates: the nodes
// this call has on each already are kept (up to nodes, the best-ranked
// first) and the surplus given back; the rest are asked of each
// candidate in turn, each taking what it has room for. part converges
// the unit's nodes on one spec to a count and says how many it has.
func spreadUnit(thread *starlark.Thread, b *starlark.Builtin, eng *fleet.Engine, call fleet.Call, group, name string, p *Placement, nodes int, part func(spec fleet.Spec, want int) (int, error)) error {
	env, err := builtins.FromThread(thread)
	if err != nil {
		return err
	}
	specs, have, others, err := p.counts(b, eng, call, group, name)
	if err != nil {
		return err
	}
	kept := make([]int, len(specs))
	left := nodes - others
	for i := range specs {
		kept[i] = min(have[i], max(left, 0))
		left -= kept[i]
	}
	// Surplus goes first, from the last-ranked candidates.
	for i := len(specs) - 1; i >= 0; i-- {
		if have[i] > kept[i] {
			if _, err := part(specs[i], kept[i]); err != nil {
				return err
			}
		}
	}
	got := slices.Clone(kept)
	order := p.askOrder(env, group, name, 0, func(i int) bool { return have[i] > 0 })
	var full []string
	for _, i := range order {
		if left <= 0 && have[i] == 0 {
			continue
		}
		sp := p.Ranked[i]
		n, err := part(specs[i], kept[i]+max(left, 0))
		if err != nil && !providers.IsCapacity(err) {
			return err
		}
		left -= n - kept[i]
		got[i] = n
		if err != nil {
			full = append(full, fmt.Sprintf("%s: %v", sp.label(), err))
			if berr := p.block(env, sp, err); berr != nil {
				return berr
			}
			env.Note(fmt.Sprintf("%s/%s: %s had room for %d of %d", group, name, sp.label(), n, n+left))
		}
	}
	var where []string
	for i, n := range got {
		if n > 0 {
			where = append(where, fmt.Sprintf("%d on %s (%s/h)", n, p.Ranked[i].label(), money(p.Prices[i])))
		}
	}
	if len(where) > 0 {
		env.Note(fmt.Sprintf("%s/%s: %s", group, name, strings.Join(where, ", ")))
	}
	if left > 0 {
		return &providers.CapacityError{Err: fmt.Errorf("the candidates had room for %d of %d nodes:\n  %s\nwhat was made stays; run the same command again later for the rest, or add candidates", nodes-left, nodes, strings.Join(full, "\n  "))}
	}
	return nil
}

// placeNodes places n more nodes of a unit over the candidates, through
// part (see spreadUnit): spread, each candidate taking what it has room
// for; else all n on the first candidate with room for them, a full one
// giving back what it made before the next is asked. In the REPL (no
// call site) the n come on top of the nodes there are.
func placeNodes(thread *starlark.Thread, b *starlark.Builtin, eng *fleet.Engine, call fleet.Call, group, name string, p *Placement, n int, part func(spec fleet.Spec, want int) (int, error)) error {
	env, err := builtins.FromThread(thread)
	if err != nil {
		return err
	}
	specs, have, others, err := p.counts(b, eng, call, group, name)
	if err != nil {
		return err
	}
	base := make([]int, len(specs)) // what each candidate keeps besides the n
	if call.Site == "" {
		copy(base, have)
		for _, h := range have {
			others += h
		}
	}
	if p.Spread {
		if call.Site == "" {
			n += others
		}
		return spreadUnit(thread, b, eng, call, group, name, p, n, part)
	}
	start := 0 // a call run again goes on from the candidate it is on
	for i := range specs {
		if have[i] > base[i] {
			start = i
			break
		}
	}
	order := p.askOrder(env, group, name, start, func(i int) bool { return have[i] > base[i] })
	var full []string
	for k, i := range order {
		sp := p.Ranked[i]
		_, err := part(specs[i], base[i]+n)
		if err == nil {
			if len(full) > 0 {
				env.Note(fmt.Sprintf("%s/%s: %d nodes placed on %s (%s/h), candidate %d", group, name, n, sp.label(), money(p.Prices[i]), i+1))
			}
			return nil
		}
		if !providers.IsCapacity(err) {
			return err
		}
		full = append(full, fmt.Sprintf("%s: %v", sp.label(), err))
		if berr := p.block(env, sp, err); berr != nil {
			return berr
		}
		if _, gerr := part(specs[i], base[i]); gerr != nil && !providers.IsCapacity(gerr) {
			return fmt.Errorf("%s had no room (%v), and giving back what it made failed: %w", sp.label(), err, gerr)
		}
		if k+1 < len(order) {
			env.Note(fmt.Sprintf("%s/%s: no room on %s for %d nodes: trying %s", group, name, sp.label(), n, p.Ranked[order[k+1]].label()))
		}
	}
	return &providers.CapacityError{Err: fmt.Errorf("no candidate had room for %d nodes:\n  %s\nrun the same command again later, or add candidates", n, strings.Join(full, "\n  "))}
}
