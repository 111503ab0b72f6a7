package main

import (
	"fmt"
	"github.com/kumo-dev/kumo/builtins/all"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/session"
	"github.com/kumo-dev/kumo/state"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

// Shell completion: cobra's `kumo completion bash|zsh|fish|powershell`
// prints the script; these functions fill in recipe files, cell numbers
// and titles (--from, --only), run names (--name), parameters (-p) and
// providers. They never write anything: a state is only read if it exists.

// completeRecipeFiles offers .star files.
func completeRecipeFiles(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return []string{"star", "ipynb"}, cobra.ShellCompDirectiveFilterFileExt
}

// recipeOf parses the recipe named by the command's first argument.
func recipeOf(args []string) *lang.Recipe {
	if len(args) == 0 {
		return nil
	}
	r, err := lang.ReadRecipe(args[0], all.Globals().Has)
	if err != nil {
		return nil
	}
	return r
}

// registerCellCompletion completes flags that name a cell.
func registerCellCompletion(cmd *cobra.Command, flags ...string) {
	for _, flag := range flags {
		cmd.RegisterFlagCompletionFunc(flag, func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			r := recipeOf(args)
			if r == nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []string
			for _, c := range r.Cells {
				if c.Runnable() {
					out = append(out, fmt.Sprintf("%d\t%s", c.Index, c.Title))
					if c.Title != "" {
						out = append(out, c.Title)
					}
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		})
	}
}

// registerRunCompletion completes --name with the runs of the state the
// command would use.
func registerRunCompletion(cmd *cobra.Command, f *factory) {
	cmd.RegisterFlagCompletionFunc("name", func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		open := f.locator().OpenExisting
		if f.locator().Named() == "" && len(args) > 0 {
			// The recipe's own state, if it has one yet.
			path := f.locator().PathFor(args[0])
			if _, err := os.Stat(path); !state.IsPostgres(path) && err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			open = f.locator().StoreFor(args[0])
		}
		store, err := open()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer store.Close()
		runs, _ := store.Runs()
		var out []string
		for _, r := range runs {
			out = append(out, r.Name+"\t"+string(r.Status))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
}

// registerParamCompletion completes -p with the recipe's parameters and,
// for a parameter that names a provider, the providers.
func registerParamCompletion(cmd *cobra.Command) {
	cmd.RegisterFlagCompletionFunc("param", func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		r := recipeOf(args)
		if r == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defaults, _ := r.Defaults(all.Globals())
		var out []string
		for _, name := range r.Params {
			if d, ok := defaults[name]; ok && isProviderName(strings.Trim(d.String(), `"`)) {
				for _, p := range providerNames() {
					out = append(out, name+"="+p)
				}
				continue
			}
			out = append(out, name+"=")
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	})
}

// providerNames lists the providers kumo has.
func providerNames() []string {
	var out []string
	for name := range session.Providers(os.TempDir(), nil) {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func isProviderName(s string) bool {
	for _, p := range providerNames() {
		if p == s {
			return true
		}
	}
	return false
}

// completeProviders offers provider names as the first argument.
func completeProviders(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return providerNames(), cobra.ShellCompDirectiveNoFileComp
}
