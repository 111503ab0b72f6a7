package lang

import (
	"fmt"
	"strings"

	"go.starlark.net/syntax"

	"github.com/kumo-dev/kumo/builtins/starkit"
)

// checkFormats finds, before anything runs, the string formats Starlark
// would refuse when the cell gets there: a literal "%-10s" % x (no width,
// flags or precision in Starlark's %) or "{:>8}".format(x) (no format
// specs). Caught at run time they fail a cell after its nodes were made.
func checkFormats(f *syntax.File) error {
	var found error
	syntax.Walk(f, func(n syntax.Node) bool {
		if found != nil {
			return false
		}
		switch n := n.(type) {
		case *syntax.BinaryExpr:
			if lit, ok := n.X.(*syntax.Literal); ok && n.Op == syntax.PERCENT && lit.Token == syntax.STRING {
				if bad := badPercent(lit.Value.(string)); bad != "" {
					found = formatError(lit, fmt.Sprintf("%q: Starlark's %% formats take no width, flags or precision (%s); pad with .ljust(n)/.rjust(n), or use \"%%s\"", lit.Value, bad))
				}
			}
		case *syntax.CallExpr:
			if dot, ok := n.Fn.(*syntax.DotExpr); ok && dot.Name.Name == "format" {
				if lit, ok := dot.X.(*syntax.Literal); ok && lit.Token == syntax.STRING {
					if bad := badBraces(lit.Value.(string)); bad != "" {
						found = formatError(lit, fmt.Sprintf("%q: Starlark's str.format takes no format specs (%s); pad with .ljust(n)/.rjust(n)", lit.Value, bad))
					}
				}
			}
		}
		return true
	})
	return found
}

func formatError(lit *syntax.Literal, msg string) error {
	start, _ := lit.Span()
	return &starkit.InputError{Err: fmt.Errorf("%s: %s", start, msg)}
}

// badPercent is the first conversion of a % format Starlark refuses.
func badPercent(format string) string {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		j := i + 1
		if j < len(format) && format[j] == '(' {
			k := strings.IndexByte(format[j:], ')')
			if k < 0 {
				return format[i:]
			}
			j += k + 1
		}
		if j >= len(format) {
			return format[i:]
		}
		if !strings.ContainsRune("%srdioxXeEfFgGc", rune(format[j])) {
			end := j
			for end < len(format) && !strings.ContainsRune("srdioxXeEfFgGc%", rune(format[end])) {
				end++
			}
			return format[i:min(end+1, len(format))]
		}
		i = j
	}
	return ""
}

// badBraces is the first replacement field of a str.format template
// with a format spec.
func badBraces(format string) string {
	for i := 0; i < len(format); i++ {
		switch {
		case strings.HasPrefix(format[i:], "{{"), strings.HasPrefix(format[i:], "}}"):
			i++
		case format[i] == '{':
			end := strings.IndexByte(format[i:], '}')
			if end < 0 {
				return ""
			}
			if field := format[i : i+end+1]; strings.Contains(field, ":") {
				return field
			}
			i += end
		}
	}
	return ""
}
