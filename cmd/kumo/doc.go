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
		for _, section := range docSections {
			fmt.Fprintf(tw, "%s:\n", section.title)
			for _, d := range defs {
				if section.has(d) {
					summary := d.Summary()
					if d.Kind == builtins.DocValue {
						summary, _, _ = strings.Cut(d.Doc, "\n")
					}
					fmt.Fprintf(tw, "  %s\t%s\n", d.Name, summary)
				}
			}
		}
		tw.Flush()
		fmt.Fprintf(opts.Out, "\nStandard library (load(\"@stdlib//NAME\", ...)): %s\n", strings.Join(stdlib.Names(), ", "))
		fmt.Fprintln(opts.Out, "kumo doc NAME shows one in full.")
		return nil
	}
	if file, src, ok := moduleSource(opts.Name); ok {
		return printModuleDoc(opts, file, src)
	}
	if ok, err := printModuleFunc(opts, opts.Name); ok || err != nil {
		return err
	}
	var found []*builtins.Def
	want := strings.TrimPrefix(strings.TrimPrefix(opts.Name, "ug."), "unit.")
	for _, d := range defs {
		if d.Name == opts.Name || d.ShortName() == want || sameTypeName(d.Name, opts.Name) {
			found = append(found, d)
		}
	}
	if len(found) == 0 {
		var close []string
		for _, d := range defs {
			if strings.Contains(d.Name, want) || editDistance(d.ShortName(), want) <= 2 {
				close = append(close, d.Name)
			}
		}
		hint := "kumo doc lists them all"
		if len(close) > 0 {
			hint = "did you mean " + strings.Join(close, ", ") + "?"
		}
		return usageError{error: fmt.Errorf("no builtin %q; %s", opts.Name, hint)}
	}
	for i, d := range found {
		if i > 0 {
			fmt.Fprintln(opts.Out)
		}
		if d.Kind == builtins.DocValue {
			fmt.Fprintf(opts.Out, "%s: %s\n", d.Name, d.Doc)
			continue
		}
		fmt.Fprintln(opts.Out, d.Doc)
	}
	return nil
}

// docSections order kumo doc's list.
var docSections = []struct {
	title string
	has   func(d *builtins.Def) bool
}{
	{"Functions", func(d *builtins.Def) bool { return d.Kind == builtins.DocBuiltin && !strings.Contains(d.Name, ".") }},
	{"Methods (of unit groups and units)", func(d *builtins.Def) bool { return d.Kind == builtins.DocBuiltin && strings.Contains(d.Name, ".") }},
	{"Values (their attributes)", func(d *builtins.Def) bool { return d.Kind == builtins.DocValue }},
	{"From Starlark", func(d *builtins.Def) bool { return d.Kind == builtins.DocStarlark }},
	{"At the REPL only", func(d *builtins.Def) bool { return d.Kind == builtins.DocREPL }},
}

// sameTypeName matches UnitGroup to unit_group, SSHResult to ssh_result.
func sameTypeName(a, b string) bool {
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }
	return norm(a) == norm(b)
}

// editDistance is the Levenshtein distance, for "did you mean".
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
