// Package session opens runs for the commands: run, plan, repl, tui, the
// Jupyter kernel, destroy, status and the rest are flag parsing over it.
// It finds the state (--state, $KUMO_STATE, a kumo.state file, or
// .kumo/state.db beside the recipe), makes the providers, takes a run's
// lock (Hold), and checks a recipe and its -p values before anything is
// locked (Prepare) and against the run's remembered ones after (Open).
package session
