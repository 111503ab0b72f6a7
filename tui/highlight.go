package tui

import (
	"strings"

	"charm.land/lipgloss/v2"
)

// Starlark code coloured for the terminal: keywords, strings, numbers
// and comments, in the 16 colours every terminal has.

var (
	styleKeyword = lipgloss.NewStyle().Foreground(lipgloss.Color("5")).Bold(true)
	styleString  = lipgloss.NewStyle().Foreground(lipgloss.Color("2"))
	styleNumber  = lipgloss.NewStyle().Foreground(lipgloss.Color("6"))
	styleComment = lipgloss.NewStyle().Faint(true).Italic(true)
)

var starlarkKeywords = map[string]bool{
	"and": true, "break": true, "continue": true, "def": true, "elif": true, "else": true, "for": true,
	"if": true, "in": true, "lambda": true, "load": true, "not": true, "or": true, "pass": true,
	"return": true, "while": true, "None": true, "True": true, "False": true,
}

// highlight colours code, keeping its text and lines as they are. A
// triple-quoted string goes on over lines; another ends with its line.
func highlight(code string) string {
	var b strings.Builder
	i := 0
	emit := func(style lipgloss.Style, text string) {
		// Style line by line: the TUI cuts lines apart.
		for k, part := range strings.Split(text, "\n") {
			if k > 0 {
				b.WriteByte('\n')
			}
			if part != "" {
				b.WriteString(style.Render(part))
			}
		}
	}
	for i < len(code) {
		c := code[i]
		switch {
		case c == '#':
			end := strings.IndexByte(code[i:], '\n')
			if end < 0 {
				end = len(code) - i
			}
			emit(styleComment, code[i:i+end])
			i += end
		case c == '"' || c == '\'':
			quote := string(c)
			if strings.HasPrefix(code[i:], strings.Repeat(quote, 3)) {
				quote = strings.Repeat(quote, 3)
			}
			j := i + len(quote)
			for j < len(code) && !strings.HasPrefix(code[j:], quote) {
				if code[j] == '\\' {
					j++ // an escaped character, a quote included
				} else if code[j] == '\n' && len(quote) == 1 {
					break // a one-line string ends with its line
				}
				j++
			}
			if strings.HasPrefix(code[min(j, len(code)):], quote) {
				j += len(quote)
			}
			j = min(j, len(code))
			emit(styleString, code[i:j])
			i = j
		case isIdentStart(c):
			j := i
			for j < len(code) && (isIdentStart(code[j]) || code[j] >= '0' && code[j] <= '9') {
				j++
			}
			if word := code[i:j]; starlarkKeywords[word] {
				emit(styleKeyword, word)
			} else {
				b.WriteString(word)
			}
			i = j
		case c >= '0' && c <= '9':
			j := i
			for j < len(code) && (isIdentStart(code[j]) || code[j] >= '0' && code[j] <= '9' || code[j] == '.') {
				j++
			}
			emit(styleNumber, code[i:j])
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
