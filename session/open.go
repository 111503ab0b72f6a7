package session

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins/all"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/fleet"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/runner"
	"github.com/kumo-dev/kumo/state"
)

// Prepared is a recipe and its -p values checked before the state is
// touched.
type Prepared struct {
	Name     string
	Recipe   *lang.Recipe
	Given    map[string]string // -p values given now
	Globals  starlark.StringDict
	Defaults starlark.StringDict // the parameters cell's values; nil if it cannot run alone
}

// Prepare names the run and reads and checks the recipe and its -p
// values, so that mistakes exit 2 before anything is locked or run.
func Prepare(file, name string, params []string) (*Prepared, error) {
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	if err := ValidRunName(name); err != nil {
		return nil, err
	}
	given, err := lang.ParseOverrides(params)
	if err != nil {
		return nil, err
	}
	globals := all.Globals()
	recipe, err := lang.ReadRecipe(file, globals.Has)
	if err != nil {
		return nil, err
	}
	if err := recipe.CheckOverrides(given); err != nil {
		return nil, err
	}
	p := &Prepared{Name: name, Recipe: recipe, Given: given, Globals: globals}
	if d, ok := recipe.Defaults(globals); ok {
		p.Defaults = d
	}
	for n, raw := range given {
		if _, err := lang.Override(n, raw, p.Defaults[n]); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// A Run is a prepared run with its state open, its lock held and its
// parameters worked out: what run and tui start from.
type Run struct {
	*Prepared
	Store  *state.Store
	Held   *Held
	Prev   state.Run // the run as last recorded
	HadRun bool
	Params *Params
}

// Open opens the state, takes the run's lock and lays the -p values
// over the remembered ones (none with defaults), refusing a change of
// provider: all before anything runs.
func Open(prep *Prepared, open func() (*state.Store, error), defaults bool) (_ *Run, err error) {
	o := &Run{Prepared: prep}
	if o.Store, err = open(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			o.Close()
		}
	}()
	if o.Held, err = Hold(o.Store, prep.Name); err != nil {
		return nil, err
	}
	if o.Prev, o.HadRun, err = o.Store.GetRun(prep.Name); err != nil {
		return nil, err
	}
	if o.Params, err = prep.ResolveParams(o.Prev, o.HadRun, defaults); err != nil {
		return nil, err
	}
	if err := checkProviders(o.Store, prep.Name, o.Prev, o.Params.Values, o.Held.Env.ProviderNames()); err != nil {
		return nil, err
	}
	return o, nil
}

// Close releases the run and the state.
func (o *Run) Close() {
	if o.Held != nil {
		o.Held.Release()
	}
	o.Store.Close()
}

// RunnerOptions are the runner's options for the opened run; the caller
// adds its events and --from/--only.
func (o *Run) RunnerOptions() runner.Options {
	return runner.Options{Recipe: o.Recipe, Run: o.Name, Overrides: o.Params.Values, Remember: o.Params.Raw,
		Builtins: o.Globals, Env: o.Held.Env, World: fleet.New(o.Store, o.Name, o.Held.Env.Providers).Missing}
}

// Params are the parameters a run uses: the -p values it remembers
// from its last execution with those given now laid over them.
type Params struct {
	Values     map[string]starlark.Value
	Raw        map[string]string // what the run remembers
	Remembered []string          // name=value taken from the last run
	Forgotten  []string          // remembered names the recipe no longer has
	Dropped    bool              // --defaults dropped remembered values
}

// resolveParams lays the -p values given now over those prev remembers
// (none with --defaults) and reads each against its default.
func (p *Prepared) ResolveParams(prev state.Run, had, defaults bool) (*Params, error) {
	rp := &Params{Values: map[string]starlark.Value{}, Raw: map[string]string{}}
	if had && !defaults {
		for n, raw := range prev.Overrides {
			if _, given := p.Given[n]; given {
				continue
			}
			if !p.Recipe.HasParam(n) {
				rp.Forgotten = append(rp.Forgotten, n)
				continue
			}
			rp.Raw[n] = raw
			rp.Remembered = append(rp.Remembered, n+"="+raw)
		}
	}
	rp.Dropped = had && defaults && len(prev.Overrides) > 0
	for n, raw := range p.Given {
		rp.Raw[n] = raw
	}
	for n, raw := range rp.Raw {
		v, err := lang.Override(n, raw, p.Defaults[n])
		if err != nil {
			return nil, err
		}
		rp.Values[n] = v
	}
	sort.Strings(rp.Remembered)
	sort.Strings(rp.Forgotten)
	return rp, nil
}

// Notes say where the parameters came from, one line each.
func (rp *Params) Notes() []string {
	var notes []string
	if len(rp.Remembered) > 0 {
		notes = append(notes, fmt.Sprintf("parameters from the last run: %s (-p to change one, --defaults to drop them)", strings.Join(rp.Remembered, " ")))
	}
	if len(rp.Forgotten) > 0 {
		notes = append(notes, fmt.Sprintf("the recipe no longer has the parameters %s; their remembered values are dropped", strings.Join(rp.Forgotten, ", ")))
	}
	if rp.Dropped {
		notes = append(notes, "back to the recipe's defaults (--defaults)")
	}
	return notes
}

// checkProviders refuses, before anything runs, a parameter change that
// would move a run's units to another provider: a recipe whose provider
// comes from a parameter would build a second set of nodes beside the
// first. Its sign: a parameter whose last value named a provider the
// run's units live on now names another provider.
func checkProviders(store *state.Store, run string, prev state.Run, values map[string]starlark.Value, known []string) error {
	on, err := fleet.New(store, run, nil).UnitsByProvider()
	if err != nil || len(on) == 0 {
		return err
	}
	var last map[string]any
	json.Unmarshal([]byte(prev.Params), &last)
	isProvider := func(s string) bool {
		for _, k := range known {
			if k == s {
				return true
			}
		}
		return false
	}
	for name, v := range values {
		now, ok := starlark.AsString(v)
		was, _ := last[name].(string)
		if !ok || now == was || !isProvider(now) || on[now] != nil || on[was] == nil {
			continue
		}
		return starkit.Inputf("run %q has its units on %s (%s); -p %s=%s would build new ones on %s beside them.\n"+
			"Give --name for a separate run on %s, or remove this run's units first (kumo destroy --name %s)",
			run, was, strings.Join(on[was], ", "), name, now, now, now, run)
	}
	return nil
}
