// Package starkit is what builtins and the recipe language share, at the
// bottom of both: the thread-locals a cell runs with (its context, the
// recipe's folder) and the error kind for a user's mistake. It imports
// nothing of kumo, so builtins take these without climbing to lang.
package starkit

import (
	"context"
	"errors"
	"fmt"

	"go.starlark.net/starlark"
)

const (
	// contextKey is the thread-local holding the context.Context of the
	// running cell, as go.starlark.net/repl does: long builtins take it
	// so that Ctrl-C stops them cleanly.
	contextKey = "context"
	// recipeDirKey holds the recipe's folder: builtins that read files
	// beside the recipe (put_file(src=), schedule(file=)) resolve
	// relative paths there.
	recipeDirKey = "kumo.recipedir"
)

// SetContext makes ctx the context of what runs next on thread.
func SetContext(thread *starlark.Thread, ctx context.Context) {
	thread.SetLocal(contextKey, ctx)
}

// Context returns the context of the cell running on thread.
func Context(thread *starlark.Thread) context.Context {
	if ctx, ok := thread.Local(contextKey).(context.Context); ok {
		return ctx
	}
	return context.Background()
}

// SetRecipeDir records the folder of the recipe thread runs.
func SetRecipeDir(thread *starlark.Thread, dir string) {
	thread.SetLocal(recipeDirKey, dir)
}

// RecipeDir is the folder of the recipe running on thread ("" if none).
func RecipeDir(thread *starlark.Thread) string {
	dir, _ := thread.Local(recipeDirKey).(string)
	return dir
}

// An InputError is a mistake in what the user gave kumo (the recipe's
// syntax, a parameter, a builtin's arguments, an unknown flavor) rather
// than a failure of the world. The CLI exits 2 for it: fixing the input
// is the way forward, and retrying as is would fail the same way.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// Inputf returns an InputError with a formatted message.
func Inputf(format string, args ...any) error {
	return &InputError{Err: fmt.Errorf(format, args...)}
}

// IsInputError reports whether err, or an error it wraps, is an
// InputError, or says it is bad input of another kind (a provider's
// configuration file: see providers.BadInput).
func IsInputError(err error) bool {
	var ie *InputError
	if errors.As(err, &ie) {
		return true
	}
	var marked interface{ BadInput() bool }
	return errors.As(err, &marked) && marked.BadInput()
}

// ReadFileBuiltin is the builtin that reads a file beside the recipe:
// the language makes the file's content an input of the cells calling
// it (lang.Deps.Files).
const ReadFileBuiltin = "read_file"
