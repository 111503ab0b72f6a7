package export

import (
	"github.com/kumo-dev/kumo/fleet"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/state"
)

// FromState is the notebook of run name of recipe as store records it;
// version is kumo's, for the notebook's metadata.
func FromState(store *state.Store, recipe *lang.Recipe, name, version string) (*Notebook, error) {
	run, _, err := store.GetRun(name)
	if err != nil {
		return nil, err
	}
	records, err := store.Cells(name)
	if err != nil {
		return nil, err
	}
	providers, err := fleet.New(store, name, nil).ProvidersUsed()
	if err != nil {
		return nil, err
	}
	recipePath := run.Recipe
	if recipePath == "" {
		recipePath = recipe.Path
	}
	return Build(recipe, records, Run{
		Name: name, Recipe: recipePath, Params: run.Params, Status: run.Status,
		StartedAt: run.StartedAt, FinishedAt: run.FinishedAt, Version: version, Providers: providers,
	}), nil
}
