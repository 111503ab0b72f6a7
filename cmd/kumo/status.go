package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/lang/state"
)

// StatusOptions are the inputs of `kumo status`.
type StatusOptions struct {
	IO
	Store func() (*state.Store, error)
	Name  string
	JSON  bool
}

func newCmdStatus(f *factory, runF func(*StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show runs, their cells and their nodes",
		Args:  argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Store = f.openExistingStore
			if runF != nil {
				return runF(opts)
			}
			return statusRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", "only this run")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

type statusRunJSON struct {
	Name       string            `json:"name"`
	Recipe     string            `json:"recipe"`
	Status     string            `json:"status"`
	Params     map[string]string `json:"params"`
	StartedAt  string            `json:"started_at,omitempty"`
	FinishedAt string            `json:"finished_at,omitempty"`
	Cells      []statusCellJSON  `json:"cells"`
	Nodes      []statusNodeJSON  `json:"nodes"`
}

type statusCellJSON struct {
	Index      int    `json:"index"`
	Title      string `json:"title"`
	Status     string `json:"status"`
	DurationMS int64  `json:"duration_ms"`
	Error      string `json:"error,omitempty"`
}

type statusNodeJSON struct {
	Group    string `json:"group"`
	Unit     string `json:"unit"`
	Name     string `json:"name"`
	Provider string `json:"provider"`
	Status   string `json:"status"`
	State    string `json:"state"`
	Address  string `json:"address"`
}

func statusRun(opts *StatusOptions) error {
	store, err := opts.Store()
	if err != nil {
		return err
	}
	defer store.Close()
	runs, err := store.Runs()
	if err != nil {
		return err
	}
	if opts.Name != "" {
		var keep []state.Run
		for _, r := range runs {
			if r.Name == opts.Name {
				keep = append(keep, r)
			}
		}
		if len(keep) == 0 {
			return usageError{fmt.Errorf("no run named %q in %s%s", opts.Name, store.Path, runList(runs))}
		}
		runs = keep
	}
	var out []statusRunJSON
	for _, r := range runs {
		s := statusRunJSON{Name: r.Name, Recipe: r.Recipe, Status: r.Status, Params: map[string]string{}}
		if pid, held := store.Holder(r.Name); held {
			s.Status = fmt.Sprintf("running (pid %d)", pid)
		} else if r.Status == "running" {
			s.Status = "interrupted" // its process died without finishing
		}
		json.Unmarshal([]byte(r.Params), &s.Params)
		if !r.StartedAt.IsZero() {
			s.StartedAt = r.StartedAt.Format("2006-01-02 15:04:05")
		}
		if !r.FinishedAt.IsZero() {
			s.FinishedAt = r.FinishedAt.Format("2006-01-02 15:04:05")
		}
		cells, err := store.Cells(r.Name)
		if err != nil {
			return err
		}
		var idx []int
		for i := range cells {
			idx = append(idx, i)
		}
		sort.Ints(idx)
		for _, i := range idx {
			c := cells[i]
			s.Cells = append(s.Cells, statusCellJSON{Index: c.Index, Title: c.Title, Status: c.Status, DurationMS: c.Duration.Milliseconds(), Error: c.Error})
		}
		nodes, err := store.Resources(state.Query{Run: r.Name, Kind: state.KindNode})
		if err != nil {
			return err
		}
		for _, n := range nodes {
			addr := ""
			if n.Data.IP != "" {
				addr = fmt.Sprintf("%s:%d", n.Data.IP, n.Data.Port)
			}
			s.Nodes = append(s.Nodes, statusNodeJSON{Group: n.Group, Unit: n.Unit, Name: n.Name, Provider: n.Provider, Status: n.Status, State: n.State, Address: addr})
		}
		out = append(out, s)
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"state": store.Path, "runs": out})
	}
	if len(out) == 0 {
		fmt.Fprintf(opts.Out, "no runs in %s\n", store.Path)
		return nil
	}
	for i, r := range out {
		if i > 0 {
			fmt.Fprintln(opts.Out)
		}
		printRunStatus(opts.Out, r)
	}
	return nil
}

func printRunStatus(w io.Writer, r statusRunJSON) {
	fmt.Fprintf(w, "run %s: %s", r.Name, r.Status)
	if r.Recipe != "" {
		fmt.Fprintf(w, " (%s", r.Recipe)
		if r.FinishedAt != "" {
			fmt.Fprintf(w, ", finished %s", r.FinishedAt)
		} else if r.StartedAt != "" {
			fmt.Fprintf(w, ", started %s", r.StartedAt)
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintln(w)
	if len(r.Params) > 0 {
		var kv []string
		for k, v := range r.Params {
			kv = append(kv, k+"="+v)
		}
		sort.Strings(kv)
		fmt.Fprintf(w, "  params: %s\n", strings.Join(kv, " "))
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	if len(r.Cells) > 0 {
		fmt.Fprintln(tw, "  CELL\tTITLE\tSTATUS\tTIME")
		for _, c := range r.Cells {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%.2fs\n", c.Index, c.Title, c.Status, float64(c.DurationMS)/1000)
		}
	}
	if len(r.Nodes) > 0 {
		fmt.Fprintln(tw, "  NODE\tUNIT\tSTATE\tADDRESS\tPROVIDER")
		for _, n := range r.Nodes {
			st := n.State
			if n.Status != state.Ready {
				st = n.Status + " (interrupted; destroy or re-run cleans it up)"
			}
			fmt.Fprintf(tw, "  %s\t%s/%s\t%s\t%s\t%s\n", n.Name, n.Group, n.Unit, st, n.Address, n.Provider)
		}
	} else {
		fmt.Fprintln(tw, "  no nodes")
	}
	tw.Flush()
}
