package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/fleet"
	"github.com/kumo-dev/kumo/internal/render"
	"github.com/kumo-dev/kumo/session"
	"github.com/kumo-dev/kumo/state"
)

// DestroyOptions are the inputs of `kumo destroy`.
type DestroyOptions struct {
	IO
	Store       func() (*state.Store, error)
	Name        string
	All         bool
	Forget      bool
	KeepData    bool // keep container groups' shared folders
	Purge       bool // delete data an earlier --keep-data kept
	Yes         bool
	Interactive bool // may ask for confirmation
}

func newCmdDestroy(f *factory, runF func(*DestroyOptions) error) *cobra.Command {
	opts := &DestroyOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Delete every node, unit and group of a run, and forget the run",
		Long: `Delete every resource a run created, including ones an interrupted run
left half-made and nodes the provider has that the state lost track of,
then forget the run's cells and journal so that the next run starts from
scratch. Asks for confirmation unless --yes is given.

The state records where each unit's nodes live (region, endpoint, cloud,
inventory; never credentials), so destroy finds them from any shell.
Credentials still come from where they always do (~/.aws, clouds.yaml,
ssh-agent). When a provider cannot be reached at all (an emulator that
is gone, a cloud account closed), --forget drops those records instead,
listing them: what they name may still exist there.

The folders a container unit group's nodes share (shared = {"/home": ""}:
users' homes, job output) are deleted with the group; --keep-data keeps
them and says where they are, and --purge deletes what an earlier
--keep-data kept.`,
		Example: `  kumo destroy --name hello --yes
  kumo destroy --all
  kumo destroy --name old-lab --forget --yes
  kumo destroy --name class --keep-data --yes`,
		Args: argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Store = f.locator().OpenExisting
			opts.Interactive = render.IsTerminal(f.In) && render.IsTerminal(f.Out)
			if runF != nil {
				return runF(opts)
			}
			return destroyRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", "the run to destroy (default: the only run)")
	cmd.Flags().BoolVar(&opts.All, "all", false, "destroy every run of the state")
	cmd.Flags().BoolVar(&opts.Forget, "forget", false, "drop the records of resources whose provider cannot be reached, listing them")
	cmd.Flags().BoolVar(&opts.KeepData, "keep-data", false, "keep the folders container groups' nodes share (homes, job output), saying where")
	cmd.Flags().BoolVar(&opts.Purge, "purge", false, "also delete the data an earlier --keep-data kept")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	registerRunCompletion(cmd, f)
	return cmd
}

func destroyRun(ctx context.Context, opts *DestroyOptions) error {
	if opts.All && opts.Name != "" {
		return usageError{error: errors.New("--all and --name exclude each other")}
	}
	if opts.KeepData && opts.Purge {
		return usageError{error: errors.New("--keep-data and --purge exclude each other")}
	}
	store, err := opts.Store()
	if err != nil {
		return err
	}
	defer store.Close()
	var names []string
	if opts.All {
		runs, err := store.Runs()
		if err != nil {
			return err
		}
		for _, r := range runs {
			names = append(names, r.Name)
		}
		if len(names) == 0 {
			fmt.Fprintf(opts.Out, "no runs in %s\n", store.Path)
			return nil
		}
	} else if opts.Purge && opts.Name != "" {
		names = []string{opts.Name} // it may be forgotten already, its data kept
	} else {
		name, err := session.PickRun(store, opts.Name)
		if err != nil {
			return err
		}
		names = []string{name}
	}
	count := 0
	for _, name := range names {
		n, err := fleet.New(store, name, nil).NodeCount()
		if err != nil {
			return err
		}
		count += n
	}
	what := fmt.Sprintf("run %q and its %s", names[0], plural(count, "node"))
	if len(names) > 1 {
		what = fmt.Sprintf("%d runs (%s) and their %s", len(names), strings.Join(names, ", "), plural(count, "node"))
	}
	if !opts.Yes {
		if !opts.Interactive {
			return usageError{error: fmt.Errorf("destroy %s: pass --yes to confirm when not in a terminal", what)}
		}
		fmt.Fprintf(opts.Out, "Destroy %s? [y/N] ", what)
		answer, _ := bufio.NewReader(opts.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(opts.Out, "not destroyed")
			return nil
		}
	}
	ctx, stop := interruptible(ctx)
	defer stop()
	var errs []error
	for _, name := range names {
		if err := destroyOne(ctx, opts, store, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// destroyOne destroys one run, holding its lock.
func destroyOne(ctx context.Context, opts *DestroyOptions, store *state.Store, name string) error {
	held, err := session.Hold(store, name)
	if err != nil {
		return err
	}
	defer held.Release()
	printer := newCellPrinter(opts.IO, false, true, held.Env.Secrets)
	defer printer.close()
	eng := fleet.New(store, name, held.Env.Providers)
	eng.Report, eng.KeepData = engineReport{printer}, opts.KeepData
	unreachable := eng.Unreachable(ctx)
	if len(unreachable) > 0 && !opts.Forget {
		var lines []string
		for prov, why := range unreachable {
			lines = append(lines, fmt.Sprintf("  %s: %v", prov, why))
		}
		sort.Strings(lines)
		return fmt.Errorf("destroying run %q: nothing was deleted, because kumo could not ask for the run's nodes:\n%s\nFix that (credentials, endpoint) and run kumo destroy again, or add --forget to drop the records of what that provider holds (listing them)",
			name, strings.Join(lines, "\n"))
	}
	if opts.Forget {
		if len(unreachable) > 0 {
			dropped, err := eng.ForgetUnreachable(unreachable)
			if err != nil {
				return err
			}
			for _, r := range dropped {
				fmt.Fprintf(opts.Out, "forgot %s %s/%s on %s (kumo could not reach %s: %v; it may still exist there)\n",
					r.Kind, r.Group, r.Name, r.Provider, r.Provider, unreachable[r.Provider])
			}
			for prov := range unreachable {
				delete(held.Env.Providers, prov) // no leak search there either
			}
		}
	}
	deleted, err := eng.Destroy(ctx)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		return interruptedError{fmt.Errorf("destroying run %q: interrupted; what was deleted is forgotten, and kumo destroy again finishes the job", name)}
	}
	if err != nil {
		return fmt.Errorf("destroying run %q: %w\nWhat was deleted is forgotten; run kumo destroy again to retry the rest", name, err)
	}
	if opts.Purge {
		if err := eng.PurgeData(); err != nil {
			return fmt.Errorf("destroying run %q: %w", name, err)
		}
	}
	if err := store.ForgetRun(name); err != nil {
		return err
	}
	list := ""
	if len(deleted) > 0 {
		list = " (" + strings.Join(deleted, ", ") + ")"
	}
	fmt.Fprintf(opts.Out, "destroyed run %q: %s deleted%s\n", name, plural(len(deleted), "node"), list)
	return nil
}

func plural(n int, word string) string { return fmt.Sprintf("%d %s(s)", n, word) }

// lineReporter prints the engine's notes as lines; commands outside a
// run have no live status line.
type lineReporter struct {
	w interface{ Write([]byte) (int, error) }
}

func (l lineReporter) Note(text string) { fmt.Fprintf(l.w, "· %s\n", text) }
func (l lineReporter) Status(string)    {}
