// Command kumo runs Starlark recipes that build application environments
// on local sandboxes, on-prem servers and clouds, resuming where a run
// stopped. One file per command: run, repl, status, destroy, doc.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/state"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailed   = 1 // a cell failed, or the world did (unreachable host, lock held)
	exitBadInput = 2 // recipe syntax, parameters, arguments, usage
	// Ctrl-C or SIGTERM stopped the command: 128 + SIGINT, as shells
	// report a command a signal ended, so scripts can tell it apart.
	exitInterrupted = 130
)

// interruptedError is a command stopped by Ctrl-C, reported as it is.
type interruptedError struct{ error }

func (e interruptedError) Unwrap() error { return e.error }

func main() { os.Exit(Main()) }

// IO is where a command reads and writes; tests replace it.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
}

// Main runs kumo with os.Args and returns the exit code.
func Main() int {
	stdio := IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}
	if every, err := time.ParseDuration(os.Getenv("KUMO_STATUS_EVERY")); err == nil && every > 0 {
		statusEvery, statusAfter = every, min(statusAfter, every)
	}
	root := newRootCmd(stdio)
	root.SetArgs(os.Args[1:])
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var silent *silentError
	if !errors.As(err, &silent) {
		fmt.Fprintln(stdio.Err, "kumo: "+lang.FormatError(err))
	}
	var usage usageError
	if errors.As(err, &usage) && usage.cmd != nil {
		// A command used wrongly: show how it is used.
		fmt.Fprint(stdio.Err, "\n"+usage.cmd.UsageString())
	}
	return exitCode(err)
}

// silentError carries an exit code for an error already reported.
type silentError struct {
	code int
	err  error
}

func (e *silentError) Error() string { return e.err.Error() }
func (e *silentError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var silent *silentError
	var locked *state.LockedError
	switch {
	case errors.As(err, &silent):
		return silent.code
	case errors.As(err, new(interruptedError)):
		return exitInterrupted
	case starkit.IsInputError(err), isUsageError(err), strings.HasPrefix(err.Error(), "unknown command"):
		return exitBadInput
	case errors.As(err, &locked):
		return exitFailed
	}
	return exitFailed
}

// usageError marks errors from flag and argument parsing, and other
// misuses of the command line. cmd, when set, is the command whose usage
// is printed after the error.
type usageError struct {
	error
	cmd *cobra.Command
}

func (e usageError) Unwrap() error { return e.error }

func isUsageError(err error) bool {
	var u usageError
	return errors.As(err, &u)
}

func newRootCmd(stdio IO) *cobra.Command {
	var statePath string
	root := &cobra.Command{
		Use:   "kumo",
		Short: "Build application environments from resumable Starlark recipes",
		Long: `kumo runs Starlark recipes split into notebook-like cells. Every side effect
is journaled in a state file, so a re-run replays finished cells without
touching anything and resumes at the first failed or edited one.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version(),
		Example: `  kumo run recipes/hello.star        # run a recipe; again: only what changed runs
  kumo status                        # runs, cells and nodes as they are now
  kumo logs hello --cell 3           # what a cell printed
  kumo destroy --name hello --yes    # delete what a run made
  kumo completion bash > /etc/bash_completion.d/kumo`,
	}
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	root.PersistentFlags().StringVar(&statePath, "state", "", "the state: a SQLite file, or a PostgreSQL URL (postgres://host/db?environment=NAME); default: $KUMO_STATE, else what a kumo.state file beside the recipe or above names, else .kumo/state.db beside the recipe")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err, c} })
	f := &factory{IO: stdio, statePath: &statePath}
	root.AddCommand(
		newCmdRun(f, nil),
		newCmdWatch(f, nil),
		newCmdPlan(f, nil),
		newCmdCheck(f, nil),
		newCmdRepl(f, nil),
		newCmdTUI(f, nil),
		newCmdStatus(f, nil),
		newCmdLogs(f, nil),
		newCmdUnlock(f, nil),
		newCmdConvert(f, nil),
		newCmdKernel(f, nil),
		newCmdExport(f, nil),
		newCmdDestroy(f, nil),
		newCmdDoc(f, nil),
		newCmdEmulate(f, nil),
		newCmdFlavors(f, nil),
		newCmdImage(f, nil),
		newCmdSecret(f, nil),
		newCmdState(f, nil),
		newCmdNodeServer(),
	)
	return root
}

// version is kumo's version as the build recorded it: the module version
// for a released build, else the commit (with "+dirty" for local edits).
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := info.Main.Version
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if v == "" || v == "(devel)" || strings.HasPrefix(v, "v0.0.0-") {
		v = "devel" // a build from a checkout: the commit says which
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += " (" + rev + dirty + ")"
	}
	return v + " " + runtime.Version()
}

// argsUsage wraps a cobra.PositionalArgs so that its errors exit 2.
func argsUsage(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err, cmd}
		}
		return nil
	}
}
