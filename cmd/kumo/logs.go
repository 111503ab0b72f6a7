package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/internal/render"
	"github.com/kumo-dev/kumo/session"
	"github.com/kumo-dev/kumo/state"
)

// LogsOptions are the inputs of `kumo logs`.
type LogsOptions struct {
	IO
	Store   func() (*state.Store, error)
	Run     string
	Cell    string
	History bool
	Follow  bool
	// Every is how often --follow looks at the state.
	Every time.Duration
}

func newCmdLogs(f *factory, runF func(*LogsOptions) error) *cobra.Command {
	opts := &LogsOptions{IO: f.IO, Every: 500 * time.Millisecond}
	cmd := &cobra.Command{
		Use:   "logs [RUN]",
		Short: "Print what a run's cells printed, and their errors",
		Long: `Print the recorded output of a run's cells, as they printed it when they
last ran live (node output, notes, print()), with each cell's status,
time and error. The record is what kumo run shows, dimmed, for replayed
cells. RUN defaults to the only run of the state. --history prints every
live run of the cells that printed something or failed, oldest first
(the last 50 of each cell): what kumo watch did tick after tick.
--follow keeps printing, while the run is under way in another terminal,
the output of its cells as they print it (within a second or so), and
ends when the run does.`,
		Example: `  kumo logs
  kumo logs hello --cell 3
  kumo logs hello --cell "Say hello"
  kumo logs burst --history --cell "Add burst nodes"
  kumo logs cluster --follow`,
		Args: argsUsage(cobra.MaximumNArgs(1)),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Run = args[0]
			}
			opts.Store = f.locator().OpenExisting
			if runF != nil {
				return runF(opts)
			}
			return logsRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Cell, "cell", "", "only this cell (number or title)")
	cmd.Flags().BoolVar(&opts.History, "history", false, "every recorded live run of the cells, oldest first, not only the last")
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "keep printing a run under way as its cells print, until it ends")
	return cmd
}

func logsRun(opts *LogsOptions) error {
	store, err := opts.Store()
	if err != nil {
		return err
	}
	defer store.Close()
	name, err := session.PickRun(store, opts.Run)
	if err != nil {
		return err
	}
	cells, err := store.Cells(name)
	if err != nil {
		return err
	}
	if opts.Follow {
		if opts.History || opts.Cell != "" {
			return usageError{error: fmt.Errorf("--follow shows the whole run as it goes: give it without --history and --cell")}
		}
		return followRun(opts, store, name)
	}
	if opts.Cell != "" {
		c, err := pickRecord(cells, opts.Cell)
		if err != nil {
			return err
		}
		cells = []state.CellRecord{c}
	}
	if opts.History {
		past, err := store.History(name)
		if err != nil {
			return err
		}
		keep := map[int64]bool{}
		for _, c := range cells {
			keep[c.ID] = true
		}
		cells = nil
		for _, c := range past {
			if keep[c.ID] {
				cells = append(cells, c)
			}
		}
	}
	_, held := store.Holder(name)
	for i, c := range cells {
		if i > 0 {
			fmt.Fprintln(opts.Out)
		}
		fmt.Fprintln(opts.Out, recordHeader(c, held))
		if out := strings.TrimRight(c.Output.String(), "\n"); out != "" {
			fmt.Fprintln(opts.Out, out)
		}
		if c.Error != "" {
			fmt.Fprintln(opts.Out, c.Error)
		}
	}
	if len(cells) == 0 {
		fmt.Fprintf(opts.Out, "run %s has no recorded cells\n", name)
	}
	return nil
}

// pickRecord finds a recorded cell by number or title (a unique prefix).
func pickRecord(cells []state.CellRecord, ref string) (state.CellRecord, error) {
	var titles []string
	for _, c := range cells {
		titles = append(titles, fmt.Sprintf("%d %q", c.Index, c.Title))
	}
	list := strings.Join(titles, ", ")
	if n, err := strconv.Atoi(ref); err == nil {
		for _, c := range cells {
			if c.Index == n {
				return c, nil
			}
		}
		return state.CellRecord{}, usageError{error: fmt.Errorf("--cell %d: no recorded cell %d (recorded: %s)", n, n, list)}
	}
	var matches []state.CellRecord
	for _, c := range cells {
		if strings.EqualFold(c.Title, ref) {
			return c, nil
		}
		if strings.HasPrefix(strings.ToLower(c.Title), strings.ToLower(ref)) {
			matches = append(matches, c)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return state.CellRecord{}, usageError{error: fmt.Errorf("--cell %q: no recorded cell has that title (recorded: %s)", ref, list)}
	}
	return state.CellRecord{}, usageError{error: fmt.Errorf("--cell %q matches %d cells; give its number (recorded: %s)", ref, len(matches), list)}
}

// recordHeader is the line above a recorded cell's output; held: the
// run is under way (a running cell is not an interrupted one).
func recordHeader(c state.CellRecord, held bool) string {
	st := string(c.Status)
	if c.Status == state.CellRunning && !held {
		st = "interrupted"
	}
	title := fmt.Sprintf("[%d]", c.Index)
	if c.Title != "" {
		title += " " + c.Title
	}
	if c.Status == state.CellRunning {
		return fmt.Sprintf("── %s · %s · since %s", title, st, c.UpdatedAt.Format("15:04:05"))
	}
	return fmt.Sprintf("── %s · %s · %s · %s", title, st, render.Round(c.Duration), c.UpdatedAt.Format("2006-01-02 15:04:05"))
}

// followRun prints the run's cells as they run in another process: a
// cell's header when it starts or ends, its lines as they are recorded.
// It ends when no process holds the run, after a last look.
func followRun(opts *LogsOptions, store *state.Store, name string) error {
	type seen struct {
		status state.CellStatus
		lines  int
		live   string // the status line last printed
	}
	shown := map[int64]seen{}
	first := true
	for {
		_, held := store.Holder(name)
		cells, err := store.Cells(name)
		if err != nil {
			return err
		}
		for _, c := range cells {
			out, live := c.Output.Live()
			was, known := shown[c.ID]
			if first && c.Status != state.CellRunning {
				shown[c.ID] = seen{status: c.Status, lines: len(out)}
				continue // what ran before: kumo logs prints it
			}
			if !known || was.status != c.Status || len(out) < was.lines {
				if c.Status != state.CellRunning && known && was.status == state.CellRunning {
					// Its last lines, then how it ended.
					printLines(opts, out, was.lines)
					was.lines = len(out)
				} else {
					was.lines = 0
				}
				fmt.Fprintln(opts.Out, recordHeader(c, held))
				if c.Status == state.CellFailed && c.Error != "" {
					fmt.Fprintln(opts.Out, c.Error)
				}
			}
			printLines(opts, out, was.lines)
			if live != "" && live != was.live {
				fmt.Fprintln(opts.Out, "  … "+live)
			}
			shown[c.ID] = seen{status: c.Status, lines: len(out), live: live}
		}
		if first && !held {
			fmt.Fprintf(opts.Out, "run %s is not under way (kumo logs %s shows what it printed)\n", name, name)
			return nil
		}
		first = false
		if !held {
			return nil
		}
		time.Sleep(opts.Every)
	}
}

func printLines(opts *LogsOptions, out state.Output, from int) {
	for _, l := range out[min(from, len(out)):] {
		fmt.Fprintln(opts.Out, "  "+l.Display())
	}
}
