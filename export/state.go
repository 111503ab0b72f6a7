package export

import (
	"sort"

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
	resources, err := store.Resources(state.Query{Run: name})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var providers []string
	for _, r := range resources {
		if r.Provider != "" && !seen[r.Provider] {
			seen[r.Provider] = true
			providers = append(providers, r.Provider)
		}
	}
	sort.Strings(providers)
	recipePath := run.Recipe
	if recipePath == "" {
		recipePath = recipe.Path
	}
	return Build(recipe, records, Run{
		Name: name, Recipe: recipePath, Params: run.Params, Status: run.Status,
		StartedAt: run.StartedAt, FinishedAt: run.FinishedAt, Version: version, Providers: providers,
	}), nil
}
