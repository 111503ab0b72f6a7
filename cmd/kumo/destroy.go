package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/builtins/units"
	"github.com/kumo-dev/kumo/lang/state"
)

// DestroyOptions are the inputs of `kumo destroy`.
type DestroyOptions struct {
	IO
	Store       func() (*state.Store, error)
	Name        string
	Yes         bool
	Interactive bool // may ask for confirmation
}

func newCmdDestroy(f *factory, runF func(*DestroyOptions) error) *cobra.Command {
	opts := &DestroyOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Delete every node, unit and group of a run, and forget the run",
		Long: `Delete every resource a run created, including ones an interrupted run
left half-made, then forget the run's cells and journal so that the next
run starts from scratch. Asks for confirmation unless --yes is given.`,
		Args: argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Store = f.openExistingStore
			opts.Interactive = isTerminal(f.In) && isTerminal(f.Out)
			if runF != nil {
				return runF(opts)
			}
			return destroyRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", "the run to destroy (default: the only run)")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func destroyRun(ctx context.Context, opts *DestroyOptions) error {
	store, err := opts.Store()
	if err != nil {
		return err
	}
	defer store.Close()
	name, err := pickRun(store, opts.Name)
	if err != nil {
		return err
	}
	nodes, err := store.Resources(state.Query{Run: name, Kind: state.KindNode})
	if err != nil {
		return err
	}
	if !opts.Yes {
		if !opts.Interactive {
			return usageError{fmt.Errorf("destroy run %q (%d nodes): pass --yes to confirm when not in a terminal", name, len(nodes))}
		}
		fmt.Fprintf(opts.Out, "Destroy run %q and its %d node(s)? [y/N] ", name, len(nodes))
		answer, _ := bufio.NewReader(opts.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(opts.Out, "not destroyed")
			return nil
		}
	}
	held, err := holdRun(store, name)
	if err != nil {
		return err
	}
	defer held.Release()
	ctx, stop := interruptible(ctx)
	defer stop()
	n, err := units.DestroyRun(ctx, held.Env)
	if err != nil {
		return fmt.Errorf("destroying run %q: %w\nWhat was deleted is forgotten; run kumo destroy again to retry the rest", name, err)
	}
	if err := store.ForgetRun(name); err != nil {
		return err
	}
	fmt.Fprintf(opts.Out, "destroyed run %q: %d node(s) deleted\n", name, n)
	return nil
}
