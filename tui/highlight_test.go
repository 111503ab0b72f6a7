package tui

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
)

func TestHighlightKeepsText(t *testing.T) {
	for _, code := range []string{
		"x = 1\nif x > 0:\n    print(\"a # not a comment\")  # a comment\n",
		"s = '''multi\nline ' \" string'''\ny = 'esc \\' q'\n",
		"unterminated = \"abc\nnext = 2\n",
		"load(\"@stdlib//pkg.star\", \"pkg\")\nfor n in range(3): pass",
	} {
		if got := ansi.Strip(highlight(code)); got != code {
			t.Errorf("highlight changed the text:\n%q\n%q", code, got)
		}
	}
}

func TestHighlightColoursTokens(t *testing.T) {
	got := highlight("if x: # note\n  s = \"hi\" + 42")
	for _, want := range []string{styleKeyword.Render("if"), styleComment.Render("# note"), styleString.Render(`"hi"`), styleNumber.Render("42")} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	if styleKeyword.Render("if") == "if" {
		t.Fatal("styles render no colour here: the test proves nothing")
	}
}

func TestMarkdownLines(t *testing.T) {
	md := "# Class **lab**\nNodes for a class, and a greeting that goes on long enough to wrap.\n\n- one `pkg.install`\n  carried on\n- two\n\n```\ncode  kept\n```\n> quoted"
	got := ansi.Strip(strings.Join(markdownLines(md, 40), "\n"))
	want := `  Class lab

  Nodes for a class, and a greeting that
  goes on long enough to wrap.

  • one pkg.install carried on
  • two

    code  kept

  │ quoted`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
