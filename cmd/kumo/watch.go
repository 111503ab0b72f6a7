package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/session"
	"github.com/kumo-dev/kumo/state"
)

// WatchOptions are the inputs of `kumo watch`.
type WatchOptions struct {
	IO
	recipeFlags
	Store   func() (*state.Store, error)
	File    string
	Every   time.Duration
	Ticks   int // 0: until interrupted
	Verbose bool
	// Systemd prints a systemd unit that runs this watch, instead of
	// running it.
	Systemd bool
}

func newCmdWatch(f *factory, runF func(*WatchOptions) error) *cobra.Command {
	opts := &WatchOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "watch FILE",
		Short: "Run a recipe again on a period: schedules and queues take effect as they change",
		Long: `Run a recipe every --every, as kumo run would: each tick is an ordinary
run of the same run (its -p values remembered, its output in kumo logs),
so cells whose inputs did not change replay without a call to any cloud
and only what changed runs. A recipe whose [parameters] cell reads a
schedule(...) changes its node counts when the schedule's value changes;
one whose [always] cell reads a queue (recipes/slurm/burst.star) grows and
shrinks with it. The recipe file, a schedule file and the flavors are read
again on every tick: an edit takes effect at the next one.

A tick that fails says so and the next one runs as planned (a cell that
failed runs live again); a mistake in the recipe or a -p value on the first
tick exits 2. Ctrl-C or SIGTERM stops a running tick as it stops kumo run
(what was done is recorded) and ends the watch with status 0.`,
		Example: `  kumo watch recipes/slurm/compute.star --every 5m -p schedule_file=compute.schedule
  kumo watch recipes/slurm/burst.star --every 30s -p max_burst=4
  kumo watch class.star --every 1m --ticks 10
  kumo watch burst.star --every 30s --systemd > ~/.config/systemd/user/kumo-burst.service`,
		Args:              argsUsage(cobra.ExactArgs(1)),
		ValidArgsFunction: completeRecipeFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			opts.Store = f.locator().StoreFor(opts.File)
			if opts.Every < time.Second {
				return usageError{fmt.Errorf("--every %s: want a period of 1s or more, as 30s or 5m", opts.Every), cmd}
			}
			if opts.Ticks < 0 {
				return usageError{fmt.Errorf("--ticks %d: want how many runs, or 0 for until Ctrl-C", opts.Ticks), cmd}
			}
			if runF != nil {
				return runF(opts)
			}
			if opts.Systemd {
				return printWatchUnit(opts)
			}
			return runWatch(cmd.Context(), opts)
		},
	}
	opts.recipeFlags.register(cmd, true)
	cmd.Flags().DurationVar(&opts.Every, "every", time.Minute, "how often to run the recipe")
	cmd.Flags().IntVar(&opts.Ticks, "ticks", 0, "stop after this many runs (0: run until Ctrl-C)")
	cmd.Flags().BoolVarP(&opts.Verbose, "verbose", "v", false, "say how builtins work as they go")
	cmd.Flags().BoolVar(&opts.Systemd, "systemd", false, "print a systemd service that runs this watch (for ~/.config/systemd/user or /etc/systemd/system) instead of running it")
	registerRunCompletion(cmd, f)
	return cmd
}

func runWatch(ctx context.Context, opts *WatchOptions) error {
	ctx, stop := interruptible(ctx)
	defer stop()
	run := &RunOptions{IO: opts.IO, recipeFlags: opts.recipeFlags, Store: opts.Store, File: opts.File, Quiet: true, Verbose: opts.Verbose}
	start := time.Now()
	for tick := 1; ; tick++ {
		fmt.Fprintf(opts.Out, "kumo watch: tick %d at %s (every %s)\n", tick, time.Now().Format("15:04:05"), opts.Every)
		err := runRecipe(ctx, run)
		run.Again = true
		switch {
		case ctx.Err() != nil:
			// Stopping is how a watch ends (Ctrl-C, or SIGTERM from
			// systemd): not a failure, even mid-tick; the run resumes.
			fmt.Fprintf(opts.Out, "kumo watch: stopped during tick %d; what it did is recorded\n", tick)
			return nil
		case err != nil && tick == 1 && exitCode(err) == exitBadInput:
			return err
		case err != nil:
			if _, silent := err.(*silentError); !silent {
				fmt.Fprintf(opts.Err, "kumo watch: tick %d: %s\n", tick, lang.FormatError(err))
			}
			fmt.Fprintf(opts.Out, "kumo watch: tick %d failed; the next runs as planned\n", tick)
		}
		if opts.Ticks > 0 && tick >= opts.Ticks {
			return nil
		}
		// Ticks keep to the period from the start: a long one does not
		// push the others later, and the ones it overran are skipped,
		// not run back to back.
		periods := time.Since(start)/opts.Every + 1
		next := start.Add(periods * opts.Every)
		select {
		case <-ctx.Done():
			fmt.Fprintf(opts.Out, "kumo watch: stopped after tick %d\n", tick)
			return nil
		case <-time.After(time.Until(next)):
		}
	}
}

// printWatchUnit writes a systemd service running the same watch: the
// recipe and state by absolute path, the -p values as given, stopped with
// SIGTERM (a clean stop: status 0), started again if it fails.
func printWatchUnit(opts *WatchOptions) error {
	if _, err := session.Prepare(opts.File, opts.Name, opts.Params); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	recipe, err := filepath.Abs(opts.File)
	if err != nil {
		return err
	}
	store, err := opts.Store()
	if err != nil {
		return err
	}
	statePath, credentials := store.Path, ""
	if state.IsPostgres(statePath) {
		// The URL holds no password: the service finds it where libpq looks.
		credentials = "# The state's password comes from ~/.pgpass (or PGSERVICE) of the user this runs as.\n"
	} else if statePath, err = filepath.Abs(statePath); err != nil {
		store.Close()
		return err
	}
	store.Close()
	args := []string{self, "watch", recipe, "--every", opts.Every.String(), "--state", statePath}
	if opts.Name != "" {
		args = append(args, "--name", opts.Name)
	}
	for _, p := range opts.Params {
		args = append(args, "-p", p)
	}
	for i, a := range args {
		args[i] = systemdQuote(a)
	}
	fmt.Fprintf(opts.Out, `[Unit]
Description=kumo watch %s
After=network-online.target

[Service]
%sWorkingDirectory=%s
ExecStart=%s
Restart=on-failure
RestartSec=30s
KillSignal=SIGTERM
TimeoutStopSec=10min

[Install]
WantedBy=default.target
`, filepath.Base(recipe), credentials, systemdQuote(filepath.Dir(recipe)), strings.Join(args, " "))
	return nil
}

// systemdQuote quotes a word of ExecStart= when it needs it.
func systemdQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"'\\$%;") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", "$$", "%", "%%")
	return `"` + r.Replace(s) + `"`
}
