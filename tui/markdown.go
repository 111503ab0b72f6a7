package tui

import (
	"regexp"
	"strings"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// A prose cell's Markdown, drawn for the terminal: headings, paragraphs
// and lists wrapped to the width, code kept as written, emphasis and
// code spans styled. kumo draws it itself rather than with glamour and
// chroma, whose package initialisation alone (35 ms, 6.6 MB: every lexer
// and style registered) every kumo command paid, TUI or not.

var (
	mdHeading = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
	mdBullet  = regexp.MustCompile(`^(\s*)([-*+]|\d+[.)])\s+(.*)$`)
	mdRule    = regexp.MustCompile(`^\s*([-*_])(\s*[-*_]){2,}\s*$`)
	mdSpan    = regexp.MustCompile("`[^`]+`|\\*\\*[^*]+\\*\\*|__[^_]+__|\\*[^*\\s][^*]*\\*|\\[[^\\]]+\\]\\([^)]+\\)")

	styleProseCode = lipgloss.NewStyle().Foreground(lipgloss.Color("6"))
	styleBold      = lipgloss.NewStyle().Bold(true)
	styleItalic    = lipgloss.NewStyle().Italic(true)
)

// markdownLines draws md in width columns, with a margin of two.
func markdownLines(md string, width int) []string {
	const margin = "  "
	width -= len(margin)
	if width < 10 {
		width = 10
	}
	var out, para []string
	flush := func() {
		if len(para) > 0 {
			for _, l := range wrap(inline(strings.Join(para, " ")), width) {
				out = append(out, margin+l)
			}
			para = nil
		}
	}
	blank := func() {
		if len(out) > 0 && out[len(out)-1] != "" {
			out = append(out, "")
		}
	}
	lines := strings.Split(strings.TrimRight(md, "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~"):
			flush()
			blank()
			fence := trimmed[:3]
			for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), fence); i++ {
				out = append(out, margin+"  "+styleProseCode.Render(truncate(lines[i], width-2)))
			}
			blank()
		case trimmed == "":
			flush()
			blank()
		case mdHeading.MatchString(trimmed):
			flush()
			blank()
			m := mdHeading.FindStringSubmatch(trimmed)
			style := styleBold
			if len(m[1]) == 1 {
				style = styleHeading
			}
			plain := strings.NewReplacer("**", "", "__", "", "`", "").Replace(m[2]) // the heading's own style is emphasis enough
			for _, l := range wrap(styleWords(style, plain), width) {
				out = append(out, margin+l)
			}
			blank()
		case mdRule.MatchString(line):
			flush()
			out = append(out, margin+styleDim.Render(strings.Repeat("─", min(width, 40))))
		case strings.HasPrefix(trimmed, ">"):
			flush()
			text := strings.TrimSpace(strings.TrimPrefix(trimmed, ">"))
			for _, l := range wrap(inline(text), width-2) {
				out = append(out, margin+styleDim.Render("│ ")+l)
			}
		case mdBullet.MatchString(line):
			flush()
			m := mdBullet.FindStringSubmatch(line)
			mark := "• "
			if m[2][0] >= '0' && m[2][0] <= '9' {
				mark = m[2] + " "
			}
			indent := strings.Repeat(" ", min(len(m[1]), 8))
			text := m[3]
			// A bullet's text goes on over lines that are neither blank
			// nor another block.
			for i+1 < len(lines) && continues(lines[i+1]) {
				i++
				text += " " + strings.TrimSpace(lines[i])
			}
			hang := strings.Repeat(" ", ansi.StringWidth(mark))
			for k, l := range wrap(inline(text), width-len(indent)-len(hang)) {
				if k == 0 {
					out = append(out, margin+indent+mark+l)
				} else {
					out = append(out, margin+indent+hang+l)
				}
			}
		default:
			para = append(para, trimmed)
		}
	}
	flush()
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// continues reports whether line carries on the text of the block above.
func continues(line string) bool {
	t := strings.TrimSpace(line)
	return t != "" && !mdBullet.MatchString(line) && !mdHeading.MatchString(t) && !strings.HasPrefix(t, ">") &&
		!strings.HasPrefix(t, "```") && !strings.HasPrefix(t, "~~~") && !mdRule.MatchString(line)
}

// inline styles code spans, bold and italic text, and shows a link as
// its text and address.
func inline(s string) string {
	return mdSpan.ReplaceAllStringFunc(s, func(m string) string {
		switch {
		case strings.HasPrefix(m, "`"):
			return styleWords(styleProseCode, strings.Trim(m, "`"))
		case strings.HasPrefix(m, "**"), strings.HasPrefix(m, "__"):
			return styleWords(styleBold, m[2:len(m)-2])
		case strings.HasPrefix(m, "["):
			text, url, _ := strings.Cut(m[1:len(m)-1], "](")
			return text + " " + styleDim.Render("("+url+")")
		}
		return styleWords(styleItalic, m[1:len(m)-1])
	})
}

// styleWords styles each word of s on its own, so that wrapping between
// them leaves no style open at a line's end.
func styleWords(style lipgloss.Style, s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		words[i] = style.Render(w)
	}
	return strings.Join(words, " ")
}

// wrap breaks styled text into lines of at most width columns, at spaces.
func wrap(s string, width int) []string {
	var lines []string
	line, lineWidth := "", 0
	for _, word := range strings.Fields(s) {
		w := ansi.StringWidth(word)
		switch {
		case lineWidth == 0:
			line, lineWidth = word, w
		case lineWidth+1+w <= width:
			line, lineWidth = line+" "+word, lineWidth+1+w
		default:
			lines = append(lines, line)
			line, lineWidth = word, w
		}
	}
	if lineWidth > 0 {
		lines = append(lines, line)
	}
	return lines
}
