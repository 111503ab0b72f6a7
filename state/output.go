package state

import (
	"encoding/json"
	"strings"
)

// An OutputLine is one line a cell printed while it ran live.
type OutputLine struct {
	// Source is the node that printed it, "" for the recipe's print()
	// and kumo's notes.
	Source string `json:"source,omitempty"`
	Stream Stream `json:"stream"`
	Text   string `json:"text"`
}

// Stream says where a line came from.
type Stream string

const (
	StreamPrint  Stream = "print"  // the recipe's print()
	StreamStdout Stream = "stdout" // a node's standard output
	StreamStderr Stream = "stderr" // a node's standard error
	StreamNote   Stream = "note"   // kumo's own remark
	// StreamStatus is the live status line of a running cell, last in
	// its record while it runs (kumo logs --follow); its end replaces it.
	StreamStatus Stream = "status"
)

// Output is what a cell printed, line by line, kept with its sources so
// that the TUI can show one node's lines and an export can write each
// node's stream apart.
type Output []OutputLine

// String is the output as kumo prints it: "node | text" for a node's
// line, "· text" for a note.
func (o Output) String() string {
	var b strings.Builder
	for _, l := range o {
		b.WriteString(l.Display())
		b.WriteByte('\n')
	}
	return b.String()
}

// Display is one line as kumo prints it.
func (l OutputLine) Display() string {
	switch {
	case l.Source != "":
		return l.Source + " | " + l.Text
	case l.Stream == StreamNote:
		return "· " + l.Text
	case l.Stream == StreamStatus:
		return "… " + l.Text
	}
	return l.Text
}

// Live splits a running cell's record into its lines and its status
// line ("" if none).
func (o Output) Live() (Output, string) {
	if n := len(o); n > 0 && o[n-1].Stream == StreamStatus {
		return o[:n-1], o[n-1].Text
	}
	return o, ""
}

// Sources are the nodes that printed, in the order they first did.
func (o Output) Sources() []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range o {
		if l.Source != "" && !seen[l.Source] {
			seen[l.Source] = true
			out = append(out, l.Source)
		}
	}
	return out
}

// encodeOutput is the column's form: a JSON array of lines.
func encodeOutput(o Output) string {
	if len(o) == 0 {
		return ""
	}
	b, _ := json.Marshal(o)
	return string(b)
}

// decodeOutput reads the column. Files of an older kumo hold the printed
// text: each of its lines becomes a print line.
func decodeOutput(s string) Output {
	if s == "" {
		return nil
	}
	if strings.HasPrefix(s, "[") {
		var o Output
		if json.Unmarshal([]byte(s), &o) == nil {
			return o
		}
	}
	var o Output
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		o = append(o, OutputLine{Stream: StreamPrint, Text: line})
	}
	return o
}
