package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/session"
	"github.com/kumo-dev/kumo/state"
)

// UnlockOptions are the inputs of `kumo unlock`.
type UnlockOptions struct {
	IO
	Store func() (*state.Store, error)
	Run   string
}

func newCmdUnlock(f *factory, runF func(*UnlockOptions) error) *cobra.Command {
	opts := &UnlockOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "unlock [RUN]",
		Short: "End the hold on a run's lock of a kumo that is gone",
		Long: `A run is held by one kumo at a time, and its lock frees itself when that
kumo ends, however it ends: on a SQLite state the kernel drops it with
the process, on PostgreSQL the server drops it with the session. unlock
is for the one case left, a team state whose holder is gone but whose
session the server still keeps (its machine vanished, or the kumo is
stopped): it ends that session if the holder provably no longer works
on the run (its process on this machine has ended, or it has not been
heard from for six heartbeats), and refuses while the holder is alive,
saying who it is. The ended session loses the right to write with the
lock, so the old holder records nothing more; the next run resumes from
what it did record. RUN defaults to the only run of the state.`,
		Example: `  kumo unlock class`,
		Args:    argsUsage(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Run = args[0]
			}
			opts.Store = f.locator().OpenExisting
			if runF != nil {
				return runF(opts)
			}
			return unlockRun(opts)
		},
	}
	return cmd
}

func unlockRun(opts *UnlockOptions) error {
	store, err := opts.Store()
	if err != nil {
		return err
	}
	defer store.Close()
	name, err := session.PickRun(store, opts.Run)
	if err != nil {
		return err
	}
	what, err := store.BreakLock(name)
	if errors.Is(err, state.ErrNotLocked) {
		fmt.Fprintf(opts.Out, "run %q is not locked: nothing to unlock\n", name)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.Out, "unlocked run %q, held by %s\n", name, what)
	return nil
}
