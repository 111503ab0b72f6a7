package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/fleet"
	"github.com/kumo-dev/kumo/session"
	"github.com/kumo-dev/kumo/state"
)

// StatusOptions are the inputs of `kumo status`.
type StatusOptions struct {
	IO
	Store  func() (*state.Store, error)
	Name   string
	JSON   bool
	Cached bool
	All    bool // every environment of the state's PostgreSQL database
}

func newCmdStatus(f *factory, runF func(*StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show runs, their cells and their nodes as they are now",
		Long: `Show each run of the state: its recipe, parameters, cells and nodes. Node
states are asked of their providers (one request per provider), so a node
that stopped or vanished behind kumo's back shows as it is; --cached shows
what the state recorded instead, without asking anyone.`,
		Example: `  kumo status
  kumo status --name hello --json
  kumo status --cached
  kumo status --all`,
		Args: argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Store = f.locator().OpenExisting
			if runF != nil {
				return runF(opts)
			}
			if opts.All {
				return statusAll(opts)
			}
			return statusRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", "only this run")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&opts.Cached, "cached", false, "show recorded node states; do not ask the providers")
	cmd.Flags().BoolVar(&opts.All, "all", false, "one line per run of every environment the state's PostgreSQL database holds: its nodes, $/h and who last ran it (recorded states)")
	registerRunCompletion(cmd, f)
	return cmd
}

type statusRunJSON struct {
	Name       string            `json:"name"`
	Recipe     string            `json:"recipe"`
	Status     string            `json:"status"`
	Params     map[string]any    `json:"params"`
	Remembered map[string]string `json:"remembered"` // the -p values a plain re-run uses
	StartedAt  string            `json:"started_at,omitempty"`
	FinishedAt string            `json:"finished_at,omitempty"`
	Cells      []statusCellJSON  `json:"cells"`
	Nodes      []statusNodeJSON  `json:"nodes"`
	// Checked says whether node states come from the providers now
	// (false with --cached, or when a provider could not be asked).
	Checked bool   `json:"checked"`
	Warning string `json:"warning,omitempty"`
	// PriceHour is what the running nodes cost together, in USD per
	// hour, from the catalog's prices (0 where it has none).
	PriceHour float64 `json:"price_hour"`
	// Schedules are what each schedule() of the run gave when it last
	// ran, and what it gives next.
	Schedules []statusScheduleJSON `json:"schedules,omitempty"`
}

type statusScheduleJSON struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Rule      string `json:"rule"`
	AsOf      string `json:"as_of"`
	NextAt    string `json:"next_at,omitempty"`
	NextValue string `json:"next_value,omitempty"`
	NextRule  string `json:"next_rule,omitempty"`
	// Due: the next change's time has passed since the run last ran: a
	// run (kumo watch, kumo run) applies it.
	Due bool `json:"due,omitempty"`
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
	HostName string `json:"host_name,omitempty"` // the machine's own name (an on-prem inventory's)
	Provider string `json:"provider"`
	Status   string `json:"status"`
	State    string `json:"state"`
	Address  string `json:"address"`
	// PriceHour is the node's on-demand price, USD per hour, from the
	// catalog (0: on-prem, containers, local, or a price it does not know).
	PriceHour float64 `json:"price_hour"`
}

func statusRun(ctx context.Context, opts *StatusOptions) error {
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
			return usageError{error: fmt.Errorf("no run named %q in %s%s", opts.Name, store.Path, session.RunList(runs))}
		}
		runs = keep
	}
	ctx, stop := interruptible(ctx)
	defer stop()
	out := []statusRunJSON{}
	for _, r := range runs {
		s, err := runStatus(ctx, store, r, !opts.Cached)
		if err != nil {
			return err
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

// runStatus gathers what is known of run r, asking the providers for its
// nodes' states when check is set.
func runStatus(ctx context.Context, store *state.Store, r state.Run, check bool) (statusRunJSON, error) {
	s := statusRunJSON{Name: r.Name, Recipe: r.Recipe, Status: string(r.Status), Params: map[string]any{},
		Remembered: r.Overrides, Cells: []statusCellJSON{}, Nodes: []statusNodeJSON{}}
	if s.Remembered == nil {
		s.Remembered = map[string]string{}
	}
	pid, held := store.Holder(r.Name)
	switch {
	case held:
		s.Status = fmt.Sprintf("running (pid %d)", pid)
	case r.Status == state.RunRunning:
		s.Status = "interrupted" // its process died without finishing
	}
	json.Unmarshal([]byte(r.Params), &s.Params)
	if !r.StartedAt.IsZero() {
		s.StartedAt = r.StartedAt.Format(timeLayout)
	}
	if !r.FinishedAt.IsZero() {
		s.FinishedAt = r.FinishedAt.Format(timeLayout)
	}
	schedules, err := store.Schedules(r.Name)
	if err != nil {
		return s, err
	}
	for _, sc := range schedules {
		j := statusScheduleJSON{Name: sc.Name, Value: sc.Value, Rule: sc.Rule, AsOf: sc.UpdatedAt.Format(timeLayout)}
		if !sc.NextAt.IsZero() {
			j.NextAt, j.NextValue, j.NextRule, j.Due = sc.NextAt.Format(timeLayout), sc.NextValue, sc.NextRule, time.Now().After(sc.NextAt)
		}
		s.Schedules = append(s.Schedules, j)
	}
	cells, err := store.Cells(r.Name)
	if err != nil {
		return s, err
	}
	for _, c := range cells {
		st := string(c.Status)
		if c.Status == state.CellRunning && !held {
			st = "interrupted" // killed while it ran
		}
		s.Cells = append(s.Cells, statusCellJSON{Index: c.Index, Title: c.Title, Status: st, DurationMS: c.Duration.Milliseconds(), Error: c.Error})
	}
	survey, err := fleet.New(store, r.Name, session.ProvidersFor(store)).Survey(ctx, check)
	if err != nil {
		return s, err
	}
	s.Checked, s.Warning = survey.Checked, survey.Warning
	for _, n := range survey.Nodes {
		s.Nodes = append(s.Nodes, statusNodeJSON{Group: n.Group, Unit: n.Unit, Name: n.Name, HostName: n.HostName, Provider: n.Provider,
			Status: n.Record, State: string(n.State), Address: n.Address, PriceHour: n.PriceHour})
	}
	s.PriceHour = survey.PriceHour()
	return s, nil
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
		fmt.Fprintf(w, "  params: %s\n", renderParams(r.Params))
	}
	if len(r.Remembered) > 0 {
		var kv []string
		for k, v := range r.Remembered {
			kv = append(kv, "-p "+k+"="+v)
		}
		sort.Strings(kv)
		fmt.Fprintf(w, "  remembered: %s\n", strings.Join(kv, " "))
	}
	for _, sc := range r.Schedules {
		fmt.Fprintf(w, "  schedule %s: %s (%s, as of %s)", sc.Name, sc.Value, sc.Rule, sc.AsOf)
		switch {
		case sc.NextAt == "":
			fmt.Fprint(w, "; it never changes")
		case sc.Due:
			fmt.Fprintf(w, "; %s since %s (%s): due, applied by the next run (kumo watch, kumo run)", sc.NextValue, sc.NextAt, sc.NextRule)
		default:
			fmt.Fprintf(w, "; %s from %s (%s)", sc.NextValue, sc.NextAt, sc.NextRule)
		}
		fmt.Fprintln(w)
	}
	if r.Warning != "" {
		fmt.Fprintf(w, "  warning: %s\n", r.Warning)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	if len(r.Cells) > 0 {
		fmt.Fprintln(tw, "  CELL\tTITLE\tSTATUS\tTIME")
		for _, c := range r.Cells {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%.2fs\n", c.Index, c.Title, c.Status, float64(c.DurationMS)/1000)
		}
	}
	if len(r.Nodes) > 0 {
		fmt.Fprintln(tw, "  NODE\tUNIT\tSTATE\tADDRESS\tPROVIDER\tPRICE")
		for _, n := range r.Nodes {
			st := n.State
			if n.Status != string(fleet.Ready) {
				st = n.Status + " (not made: interrupted or failed; a re-run makes it, destroy forgets it)"
			}
			name := n.Name
			if n.HostName != "" && n.HostName != n.Name {
				name += " (" + n.HostName + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s/%s\t%s\t%s\t%s\t%s\n", name, n.Group, n.Unit, st, n.Address, n.Provider, hourly(n.PriceHour))
		}
	} else {
		fmt.Fprintln(tw, "  no nodes")
	}
	tw.Flush()
	if r.PriceHour > 0 {
		fmt.Fprintf(w, "  running nodes cost %s together (catalog on-demand prices)", hourly(r.PriceHour))
		if groups := groupPrices(r.Nodes); len(groups) > 1 {
			var per []string
			for _, g := range slices.Sorted(maps.Keys(groups)) {
				per = append(per, fmt.Sprintf("unit group %s %s", g, hourly(groups[g])))
			}
			fmt.Fprintf(w, ": %s", strings.Join(per, ", "))
		}
		fmt.Fprintln(w)
	}
}

// groupPrices is what each unit group's running nodes cost per hour.
func groupPrices(nodes []statusNodeJSON) map[string]float64 {
	out := map[string]float64{}
	for _, n := range nodes {
		if n.Status == string(fleet.Ready) && n.State == "RUNNING" {
			out[n.Group] += n.PriceHour
		}
	}
	return out
}

// timeLayout is how status shows times: local, to the second.
const timeLayout = "2006-01-02 15:04:05"

// hourly is a price per hour, "-" when there is none.
func hourly(p float64) string {
	if p == 0 {
		return "-"
	}
	return fmt.Sprintf("$%.4f/h", p)
}

// renderParams writes parameters as a recipe would: flavor="small" nodes=3.
func renderParams(params map[string]any) string {
	var kv []string
	for k, v := range params {
		b, _ := json.Marshal(v)
		kv = append(kv, k+"="+string(b))
	}
	sort.Strings(kv)
	return strings.Join(kv, " ")
}

// statusAllJSON is one run of kumo status --all.
type statusAllJSON struct {
	Environment string  `json:"environment"`
	Run         string  `json:"run"`
	Status      string  `json:"status"`
	Nodes       int     `json:"nodes"`
	PriceHour   float64 `json:"price_hour"`
	LastBy      string  `json:"last_run_by,omitempty"` // who last held it: "alice on lab-pc"
	LastAt      string  `json:"last_run_at,omitempty"`
}

// statusAll lists every run of every environment of the database, from
// what the state recorded (asking no provider: there may be many).
func statusAll(opts *StatusOptions) error {
	store, err := opts.Store()
	if err != nil {
		return err
	}
	defer store.Close()
	envs, err := store.Environments()
	if err != nil {
		return err
	}
	var out []statusAllJSON
	for _, env := range envs {
		st := store
		if env != store.Environment() {
			if st, err = store.OpenEnvironment(env); err != nil {
				return err
			}
		}
		rows, err := environmentStatus(st, env)
		if st != store {
			st.Close()
		}
		if err != nil {
			return err
		}
		out = append(out, rows...)
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
	tw := tabwriter.NewWriter(opts.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENVIRONMENT\tRUN\tSTATUS\tNODES\tPRICE\tLAST RUN BY")
	for _, r := range out {
		env := r.Environment
		if env == "" {
			env = "-"
		}
		by := "-"
		if r.LastBy != "" {
			by = r.LastBy + ", " + r.LastAt
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", env, r.Run, r.Status, r.Nodes, hourly(r.PriceHour), by)
	}
	return tw.Flush()
}

func environmentStatus(st *state.Store, env string) ([]statusAllJSON, error) {
	runs, err := st.Runs()
	if err != nil {
		return nil, err
	}
	provs := session.ProvidersFor(st)
	var out []statusAllJSON
	for _, r := range runs {
		row := statusAllJSON{Environment: env, Run: r.Name, Status: string(r.Status)}
		if pid, held := st.Holder(r.Name); held {
			row.Status = fmt.Sprintf("running (pid %d)", pid)
		}
		survey, err := fleet.New(st, r.Name, provs).Survey(context.Background(), false)
		if err != nil {
			return nil, err
		}
		row.Nodes, row.PriceHour = len(survey.Nodes), survey.PriceHour()
		if who, host, since, ok := st.LastHolder(r.Name); ok {
			row.LastBy, row.LastAt = who+" on "+host, since.Format(timeLayout)
		}
		out = append(out, row)
	}
	return out, nil
}
