package lang

import (
	"errors"
	"fmt"
	"strings"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

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

// FormatError renders an error the way a user wants to read it: every
// line starts with file:line:col where one is known, and a Starlark
// failure is followed by its backtrace.
func FormatError(err error) string {
	return notebookPositions(describeError(err))
}

func describeError(err error) string {
	var evalErr *starlark.EvalError
	var synErr syntax.Error
	var resErrs resolve.ErrorList
	switch {
	case errors.As(err, &evalErr):
		pos := innermostPosition(evalErr.CallStack)
		msg := evalErr.Msg
		if pos != "" {
			msg = pos + ": " + msg
		}
		// The backtrace without Starlark's closing "Error in f: msg" line,
		// which would repeat the message just printed.
		stack := evalErr.CallStack
		if n := len(stack); n > 0 && stack[n-1].Pos.Filename() == "<builtin>" {
			stack = stack[:n-1]
		}
		if len(stack) == 0 {
			return msg
		}
		return msg + "\n" + indent(stack.String())
	case errors.As(err, &resErrs):
		var lines []string
		for _, e := range resErrs {
			lines = append(lines, e.Pos.String()+": "+e.Msg)
		}
		return strings.Join(lines, "\n")
	case errors.As(err, &synErr):
		return synErr.Pos.String() + ": " + synErr.Msg
	}
	return err.Error()
}

// innermostPosition is where the error happened in recipe code: the top
// frame with a source position (builtins have none).
func innermostPosition(stack starlark.CallStack) string {
	for i := len(stack) - 1; i >= 0; i-- {
		if stack[i].Pos.IsValid() && stack[i].Pos.Filename() != "<builtin>" {
			return stack[i].Pos.String()
		}
	}
	return ""
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}
