package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kumo-dev/kumo/providers/emulate"
)

// TestEmulatorStorms: each emulator answers every call with its
// throttling error, then with a 5xx, for a few seconds while kumo makes
// two nodes: kumo rides the storm out (backing off, never making a node
// twice). A storm longer than kumo's retries fails the cell with advice;
// once the storm is over the same command makes exactly the two nodes.
// Counted from outside kumo.
func TestEmulatorStorms(t *testing.T) {
	if testing.Short() {
		t.Skip("boots nodes")
	}
	kumo, err := exec.LookPath("kumo")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	make2 := []string{"run", "crash.star", "-q", "-p", "nodes=2", "-p", "power=on"}
	for _, w := range []*crashWorld{awsWorld(t, ctx, kumo), openstackWorld(t, ctx, kumo)} {
		os.WriteFile(filepath.Join(w.dir, "crash.star"), []byte(crashRecipe), 0o644)
		args := append(append([]string{}, make2...), "-p", "provider="+w.provider)
		t.Cleanup(func() { kumoIn(w, "destroy", "--all", "--yes") })
		for _, kind := range []emulate.StormKind{emulate.ThrottleStorm, emulate.FailureStorm} {
			w.storm(kind, 3*time.Second)
			start := time.Now()
			if out, err := kumoIn(w, args...); err != nil {
				t.Fatalf("%s: a 3 s storm (%d): %v\n%s", w.provider, kind, err, out)
			}
			if exist, running := w.waitCount(2, 2); exist != 2 || running != 2 {
				t.Fatalf("%s: after a 3 s storm (%d): %d exist, %d run; want 2", w.provider, kind, exist, running)
			}
			t.Logf("%s: rode out a 3 s storm (%d) in %s", w.provider, kind, time.Since(start).Round(time.Millisecond))
			if out, err := kumoIn(w, "destroy", "--name", "crash", "--yes"); err != nil {
				t.Fatalf("%s: destroy: %v\n%s", w.provider, err, out)
			}
		}
		// A storm longer than kumo waits: the cell fails and says so.
		w.storm(emulate.FailureStorm, 5*time.Minute)
		start := time.Now()
		out, err := kumoIn(w, args...)
		if err == nil || !strings.Contains(out, "kept answering") || !strings.Contains(out, "run the same command again once it recovers") {
			t.Fatalf("%s: a long storm: %v\n%s", w.provider, err, out)
		}
		t.Logf("%s: gave up on a long storm after %s: %s", w.provider, time.Since(start).Round(time.Millisecond), lineWith(out, "crash.star:"))
		w.storm(emulate.FailureStorm, 0)
		if out, err := kumoIn(w, args...); err != nil {
			t.Fatalf("%s: after the storm: %v\n%s", w.provider, err, out)
		}
		if exist, running := w.waitCount(2, 2); exist != 2 || running != 2 {
			t.Fatalf("%s: after the long storm: %d exist, %d run; want 2", w.provider, exist, running)
		}
	}
}

// lineWith is the first line of out holding mark.
func lineWith(out, mark string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, mark) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}
