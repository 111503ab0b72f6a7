package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// nosecret VALUES searches every byte kumo and its helpers wrote under
// $WORK (the state and its WAL, exports, logs, captured terminal output:
// any file but VALUES itself and what the recipe put on local nodes) and
// the environment and command line of every process left under $WORK
// (node servers, emulators), for each secret value in VALUES (one per
// line) in plain text, base64 (standard and URL, any alignment), hex,
// JSON-escaped and URL-encoded form. It fails on any hit.
func cmdNoSecret(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: nosecret VALUES")
	}
	valuesFile := ts.MkAbs(args[0])
	b, err := os.ReadFile(valuesFile)
	ts.Check(err)
	var forms [][]byte
	for _, v := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if v = strings.TrimSpace(v); len(v) < 8 {
			ts.Fatalf("nosecret: %q is too short to search for", v)
		}
		forms = append(forms, secretForms(v)...)
	}
	work := ts.Getenv("WORK")
	scanned, bytesRead := 0, 0
	search := func(where string, data []byte) {
		for _, f := range forms {
			if bytes.Contains(data, f) {
				ts.Fatalf("a secret, as %q, is in %s", f, where)
			}
		}
		scanned++
		bytesRead += len(data)
	}
	filepath.WalkDir(work, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		// What the recipe put on a local node is the node's, delivered on purpose.
		if d.IsDir() && d.Name() == "root" && strings.Contains(path, "/.kumo/local/") {
			return filepath.SkipDir
		}
		if d.IsDir() && d.Name() == "root" && strings.Contains(path, "/emulator") {
			return filepath.SkipDir
		}
		// So is what it put on a container node (an emulated instance's):
		// its disk, the overlay's upper layer, and the mounted tree.
		if d.IsDir() && (d.Name() == "upper" || d.Name() == "root") && filepath.Base(filepath.Dir(filepath.Dir(path))) == "nodes" {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() || path == valuesFile {
			return nil
		}
		data, err := os.ReadFile(path)
		if err == nil {
			search(strings.TrimPrefix(path, work+"/"), data)
		}
		return nil
	})
	for _, pid := range processesUnder(work) {
		for _, what := range []string{"environ", "cmdline"} {
			if data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + what); err == nil {
				search("the "+what+" of process "+strconv.Itoa(pid), data)
			}
		}
	}
	ts.Logf("nosecret: %d files and process listings, %d bytes, no secret in %d forms", scanned, bytesRead, len(forms))
}

// secretForms are the ways a value can be written down.
func secretForms(v string) [][]byte {
	forms := []string{v, hex.EncodeToString([]byte(v)), strings.ToUpper(hex.EncodeToString([]byte(v))),
		url.QueryEscape(v), url.PathEscape(v)}
	j, _ := json.Marshal(v)
	forms = append(forms, string(j[1:len(j)-1]))
	var noHTML bytes.Buffer
	enc := json.NewEncoder(&noHTML)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	forms = append(forms, strings.Trim(strings.TrimSpace(noHTML.String()), `"`))
	// base64 of the value inside longer data depends on where it starts:
	// for each of the three alignments, the characters that only the
	// value's bytes decide.
	for _, e := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for off := 0; off < 3; off++ {
			s := e.EncodeToString(append(make([]byte, off), v...))
			from := 0
			if off > 0 {
				from = 4
			}
			if to := len(s) - 4; to-from >= 4 {
				forms = append(forms, s[from:to])
			}
		}
	}
	var out [][]byte
	seen := map[string]bool{}
	for _, f := range forms {
		if !seen[f] {
			seen[f] = true
			out = append(out, []byte(f))
		}
	}
	return out
}
