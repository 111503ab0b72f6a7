package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/crypto/ssh"
)

// The test binary is also kumo: scripts run it as `kumo`, and the local
// provider starts it as `kumo node-server` for every node.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"kumo": func() { os.Exit(Main()) },
	})
}

// TestScripts runs the end-to-end sessions in testdata/script: each reads
// like a user's terminal session against the local provider.
func TestScripts(t *testing.T) {
	recipes, err := filepath.Abs("../../recipes")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("RECIPES", recipes)
			env.Setenv("PORT", strconv.Itoa(freePort(env.T())))
			env.Setenv("KUMO_FLAVORS", "")
			work := env.WorkDir
			// Should a script fail half-way, stop its nodes anyway.
			env.Defer(func() { killUnder(work) })
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitfile": cmdWaitFile,
			"procs":    cmdProcs,
			"rekey":    cmdRekey,
		},
	})
}

func freePort(t testscript.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitfile FILE waits up to 30s for FILE to exist.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: waitfile FILE")
	}
	path := ts.MkAbs(args[0])
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("%s did not appear in 30s", args[0])
}

// procs N checks that exactly N live processes belong to the script's
// work folder: node servers and what nodes started.
func cmdProcs(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: procs N")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("procs: %v", err)
	}
	// Processes may still be exiting: allow them a moment.
	var got []int
	for i := 0; i < 100; i++ {
		got = processesUnder(ts.Getenv("WORK"))
		if len(got) == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("%d processes under $WORK (%v), want %d", len(got), got, want)
}

// processesUnder lists live processes whose command line or environment
// mentions dir (node servers name their folder; node commands carry it
// in KUMO_NODE_ID's folder-less form, so the command line is checked too).
func processesUnder(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		cwd, _ := os.Readlink("/proc/" + e.Name() + "/cwd")
		if bytes.Contains(cmdline, []byte(dir+"/")) || strings.HasPrefix(cwd, dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

func killUnder(dir string) {
	for _, pid := range processesUnder(dir) {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
	}
}

// rekey DIR gives the local node in DIR a new host key, as a rebuilt or
// impersonated host would have.
func cmdRekey(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: rekey NODEDIR")
	}
	matches, _ := filepath.Glob(ts.MkAbs(args[0]))
	if len(matches) != 1 {
		ts.Fatalf("rekey: %s matches %d folders", args[0], len(matches))
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	ts.Check(err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	ts.Check(err)
	ts.Check(os.WriteFile(filepath.Join(matches[0], "hostkey"), pem.EncodeToMemory(block), 0o600))
}
