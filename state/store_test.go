package state

import (
	"path/filepath"
	"testing"
)

// A group's key is found beside the state whatever folder kumo runs in,
// also when an older kumo recorded it relative to the folder it ran in.
func TestGroupKeyFileIsAbsolute(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, ".kumo", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := filepath.Join(dir, ".kumo", "keys", "hello", "web")
	for _, recorded := range []string{"", "recipes/.kumo/keys/hello/web", want} {
		g := Resource{Run: "hello", Kind: KindGroup, Name: "web", Data: Data{KeyFile: recorded}}
		if got := s.GroupKeyFile(g); got != want {
			t.Errorf("recorded %q: key file %q, want %q", recorded, got, want)
		}
	}
}
