package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/all"
	"github.com/kumo-dev/kumo/stdlib"
)

// DocOptions are the inputs of `kumo doc`.
type DocOptions struct {
	IO
	Name string
}

func newCmdDoc(f *factory, runF func(*DocOptions) error) *cobra.Command {
	opts := &DocOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "doc [BUILTIN]",
		Short: "List the builtins, or show one's documentation",
		Example: `  kumo doc
  kumo doc ssh_run
  kumo doc create_unit        # or UnitGroup.create_unit`,
		Args: argsUsage(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Name = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return docRun(opts)
		},
	}
	return cmd
}

func docRun(opts *DocOptions) error {
	defs := all.Docs()
	if opts.Name == "" {
		tw := tabwriter.NewWriter(opts.Out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "Builtins (kumo doc NAME for details):")
		for _, d := range defs {
			fmt.Fprintf(tw, "  %s\t%s\n", d.Name, d.Summary())
		}
		tw.Flush()
		fmt.Fprintf(opts.Out, "\nStandard library (load(\"@stdlib//NAME\", ...)): %s\n", strings.Join(stdlib.Names(), ", "))
		return nil
	}
	var found []*builtins.Def
	want := strings.TrimPrefix(strings.TrimPrefix(opts.Name, "ug."), "unit.")
	for _, d := range defs {
		if d.Name == opts.Name || d.ShortName() == want {
			found = append(found, d)
		}
	}
	if len(found) == 0 {
		var close []string
		for _, d := range defs {
			if strings.Contains(d.Name, want) {
				close = append(close, d.Name)
			}
		}
		hint := "kumo doc lists them all"
		if len(close) > 0 {
			hint = "did you mean " + strings.Join(close, ", ") + "?"
		}
		return usageError{fmt.Errorf("no builtin %q; %s", opts.Name, hint)}
	}
	for i, d := range found {
		if i > 0 {
			fmt.Fprintln(opts.Out)
		}
		fmt.Fprintln(opts.Out, d.Doc)
	}
	return nil
}
