package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/builtins/units"
	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/session"
)

// FlavorsOptions are the inputs of `kumo flavors`.
type FlavorsOptions struct {
	IO
	Provider string
}

func newCmdFlavors(f *factory, runF func(*FlavorsOptions) error) *cobra.Command {
	opts := &FlavorsOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "flavors [PROVIDER]",
		Short: "List the flavors spec() knows, with their sizes and prices",
		Long: `List the flavor catalog: kumo's built-in flavors laid over by
~/.config/kumo/flavors.yaml (or $KUMO_FLAVORS), with vCPUs, memory, disk
and, where known, the on-demand price per hour.`,
		Example: `  kumo flavors
  kumo flavors aws`,
		Args:              argsUsage(cobra.MaximumNArgs(1)),
		ValidArgsFunction: completeProviders,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Provider = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return flavorsRun(opts)
		},
	}
	return cmd
}

func flavorsRun(opts *FlavorsOptions) error {
	cat, err := units.LoadCatalog()
	if err != nil {
		return err
	}
	// The providers only describe specs here: no state is opened.
	provs := session.Providers(os.TempDir(), nil)
	var names []string
	for name := range cat {
		if opts.Provider == "" || name == opts.Provider {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return usageError{error: fmt.Errorf("no flavors for provider %q", opts.Provider)}
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(opts.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tFLAVOR\tVCPU\tMEMORY\tDISK\t$/HOUR\tFIELDS")
	for _, prov := range names {
		var flavors []string
		for f := range cat[prov] {
			flavors = append(flavors, f)
		}
		sort.Strings(flavors)
		for _, fl := range flavors {
			fields := cat[prov][fl]
			var size providers.Size
			if d, ok := provs[prov].(providers.Describer); ok {
				size = d.Describe(fields)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", prov, fl, orDash(size.VCPUs, ""), orDashF(size.MemoryGB, " GB"),
				orDash(size.DiskGB, " GB"), price(size.PriceHour), describeFields(fields))
		}
	}
	return tw.Flush()
}

func orDash(n int, unit string) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n) + unit
}

func orDashF(f float64, unit string) string {
	if f == 0 {
		return "-"
	}
	return strconv.FormatFloat(f, 'f', -1, 64) + unit
}

func price(p float64) string {
	if p == 0 {
		return "-"
	}
	return fmt.Sprintf("%.4f", p)
}

func describeFields(fields map[string]any) string {
	var parts []string
	for k, v := range fields {
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
