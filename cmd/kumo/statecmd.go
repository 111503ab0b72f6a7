package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/session"
	"github.com/kumo-dev/kumo/state"
)

// StateOptions are the inputs of `kumo state push|pull`.
type StateOptions struct {
	IO
	Push     bool   // push: this folder's state to Other; pull: Other to this folder's
	Other    string // a PostgreSQL URL or a state file
	Here     func() (*state.Store, error)
	HerePath string // where pull writes: --state, else .kumo/state.db here
}

func newCmdState(f *factory, runF func(*StateOptions) error) *cobra.Command {
	opts := &StateOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "state push DEST | state pull SRC",
		Short: "Move a state to a team's PostgreSQL (or another file) and back",
		Long: `push copies the state this folder uses (as kumo status finds it) into
DEST, a PostgreSQL URL (postgres://host/db?environment=NAME) or a state
file, which must hold no state yet; pull copies SRC into a new state here
(--state, else .kumo/state.db). Every row goes, ids included, in one
transaction: a failure leaves the destination empty. No run may be under
way meanwhile. The source is left as it was; after a push, point the
recipes at the new state with a kumo.state file holding DEST.`,
		Example: `  kumo state push "postgres://db.example.org/kumo?environment=class"
  echo "postgres://db.example.org/kumo?environment=class" > kumo.state
  kumo state pull "postgres://db.example.org/kumo?environment=class" --state backup.db`,
		Args:      argsUsage(cobra.ExactArgs(2)),
		ValidArgs: []string{"push", "pull"},
		RunE: func(cmd *cobra.Command, args []string) error {
			switch args[0] {
			case "push":
				opts.Push = true
			case "pull":
			default:
				return usageError{fmt.Errorf("kumo state %s: want push or pull", args[0]), cmd}
			}
			opts.Other = args[1]
			opts.Here = f.locator().OpenExisting
			opts.HerePath = f.locator().PathFor("")
			if runF != nil {
				return runF(opts)
			}
			return stateRun(opts)
		},
	}
	return cmd
}

func stateRun(opts *StateOptions) error {
	var src, dst *state.Store
	var err error
	if opts.Push {
		if src, err = opts.Here(); err != nil {
			return err
		}
		defer src.Close()
		if dst, err = session.OpenState(opts.Other, ".kumo"); err != nil {
			return err
		}
		defer dst.Close()
	} else {
		if !state.IsPostgres(opts.HerePath) {
			if _, err := os.Stat(opts.HerePath); err == nil {
				return usageError{error: fmt.Errorf("kumo state pull: %s exists; pull into a new state (--state NEW.db)", opts.HerePath)}
			}
		}
		if src, err = session.OpenState(opts.Other, ".kumo"); err != nil {
			return err
		}
		defer src.Close()
		if dst, err = session.OpenState(opts.HerePath, ".kumo"); err != nil {
			return err
		}
		defer dst.Close()
	}
	runs, err := src.Runs()
	if err != nil {
		return err
	}
	for _, r := range runs {
		if pid, held := src.Holder(r.Name); held {
			return fmt.Errorf("run %q is under way (kumo process %d): copy the state once it ends", r.Name, pid)
		}
	}
	if err := state.Copy(dst, src); err != nil {
		return fmt.Errorf("copying %s to %s: %w (nothing was written there)", src.Path, dst.Path, err)
	}
	fmt.Fprintf(opts.Out, "copied %s (%s) from %s to %s\n", plural(len(runs), "run"), runNames(runs), src.Path, dst.Path)
	if opts.Push && state.IsPostgres(dst.Path) {
		fmt.Fprintf(opts.Out, "the recipes here use it once a kumo.state file beside them names it: echo '%s' > kumo.state\n", opts.Other)
	}
	return nil
}

func runNames(runs []state.Run) string {
	var names string
	for i, r := range runs {
		if i > 0 {
			names += ", "
		}
		names += r.Name
	}
	return names
}
