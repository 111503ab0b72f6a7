package ssh

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestShellQuote(t *testing.T) {
	for _, s := range []string{"", "plain", "it's", `"double" $HOME \ back`, "new\nline", "'''"} {
		out, err := exec.Command("/bin/sh", "-c", "printf %s "+Quote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("Quote(%q) came back as %q (%v)", s, out, err)
		}
	}
}

func TestSudoWrapRunsTheCommandAsRoot(t *testing.T) {
	cmd := `echo "it's $((1+1))" 'a  b'; id -u`
	out, err := exec.Command("/bin/sh", "-c", SudoWrap(cmd)).CombinedOutput()
	if os.Getuid() != 0 {
		// Not root: the wrapper goes through sudo -n, which either runs it
		// as root or fails at once instead of prompting.
		if err == nil && !strings.HasSuffix(string(out), "\n0\n") {
			t.Errorf("sudo ran the command as %q", out)
		}
		return
	}
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if string(out) != "it's 2 a  b\n0\n" {
		t.Errorf("output %q", out)
	}
}

func TestLineWriter(t *testing.T) {
	var lines []string
	w := &lineWriter{stream: "stdout", emit: func(stream, line string) { lines = append(lines, stream+":"+line) }}
	w.Write([]byte("one\r\ntw"))
	w.Write([]byte("o\nthr"))
	w.flush()
	if got := strings.Join(lines, "|"); got != "stdout:one|stdout:two|stdout:thr" {
		t.Errorf("lines %q", got)
	}
	if w.buf.String() != "one\r\ntwo\nthr" {
		t.Errorf("captured %q", w.buf.String())
	}
}

func TestLineWriterBoundsWhatItKeeps(t *testing.T) {
	w := &lineWriter{stream: "stdout"}
	chunk := strings.Repeat("x", 1<<20)
	for i := 0; i < 10; i++ {
		w.Write([]byte(chunk))
	}
	w.flush()
	if w.buf.Len() > maxCaptured+100 || !strings.HasSuffix(w.buf.String(), "[kumo: 2097152 more bytes not kept]\n") {
		t.Errorf("kept %d bytes, ending %q", w.buf.Len(), w.buf.String()[w.buf.Len()-50:])
	}
}

func TestTail(t *testing.T) {
	if tail("") != "" {
		t.Error("empty stderr gave a tail")
	}
	got := tail("1\n2\n3\n4\n5\n6\n7\n")
	if !strings.Contains(got, "3\n      4\n      5\n      6\n      7") || strings.Contains(got, "2") {
		t.Errorf("tail = %q, want the last 5 lines", got)
	}
}
