package lang

import (
	"errors"
	"strings"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

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
