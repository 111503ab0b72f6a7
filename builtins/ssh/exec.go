package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kumo-dev/kumo/builtins"
)

// A Command is one remote command.
type Command struct {
	Cmd     string
	Env     map[string]string // sent as SSH "env" requests, never on the command line
	Stdin   io.Reader
	Timeout time.Duration
	// OnLine receives every complete line of output as it arrives.
	OnLine func(stream, line string)
	// OnProgress receives the progress lines (ProgressPrefix) of stdout.
	OnProgress func(line string)
	// Stdout, if set, receives standard output as raw bytes instead
	// (file transfers): nothing of it is captured or cut into lines.
	Stdout io.Writer
}

// Outcome is what a remote command did.
type Outcome struct {
	Stdout, Stderr string
	ExitCode       int
	Duration       time.Duration
}

// ErrConnectionLost is a command cut off by its connection dying.
var ErrConnectionLost = errors.New("the connection was lost before the command finished; it may have run partly")

// maxCaptured bounds the output kept per stream; the rest still streams.
// Longer lines than maxLine are cut.
const (
	maxCaptured = 8 << 20
	maxLine     = 1 << 20
)

// Exec runs c on ep. A connection that turns out to be dead is re-dialled
// once. The command is killed when the timeout passes or ctx ends.
func (p *Pool) Exec(ctx context.Context, ep builtins.Endpoint, c Command) (Outcome, error) {
	start := time.Now()
	sess, err := p.session(ctx, ep)
	if err != nil {
		return Outcome{}, err
	}
	defer sess.Close()
	cmd, stdin := c.Cmd, c.Stdin
	refused := map[string]string{}
	for k, v := range c.Env {
		if err := sess.Setenv(k, v); err != nil {
			refused[k] = v
		}
	}
	if len(refused) > 0 {
		// Most sshd configs accept few variables (AcceptEnv LANG LC_*).
		// The rest go through stdin, never onto a command line that any
		// user of the host could read in ps.
		var prelude string
		cmd, prelude = envThroughStdin(refused, cmd)
		if stdin == nil {
			stdin = strings.NewReader("")
		}
		stdin = io.MultiReader(strings.NewReader(prelude), stdin)
	}
	stdout := &lineWriter{stream: "stdout", emit: c.OnLine, onProgress: c.OnProgress}
	stderr := &lineWriter{stream: "stderr", emit: c.OnLine}
	sess.Stdout, sess.Stderr, sess.Stdin = stdout, stderr, stdin
	if c.Stdout != nil {
		sess.Stdout = c.Stdout
	}
	if err := sess.Start(cmd); err != nil {
		return Outcome{}, fmt.Errorf("%s: starting command: %w", ep.Label, err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	var timeout <-chan time.Time
	if c.Timeout > 0 {
		t := time.NewTimer(c.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	var waitErr error
	select {
	case waitErr = <-done:
	case <-timeout:
		sess.Signal(ssh.SIGKILL)
		sess.Close()
		return Outcome{}, fmt.Errorf("%s: command timed out after %s and was killed", ep.Label, c.Timeout)
	case <-ctx.Done():
		sess.Signal(ssh.SIGKILL)
		sess.Close()
		if errors.Is(ctx.Err(), context.Canceled) {
			return Outcome{}, fmt.Errorf("%s: interrupted; the command was killed", ep.Label)
		}
		return Outcome{}, fmt.Errorf("%s: %w", ep.Label, ctx.Err())
	}
	stdout.flush()
	stderr.flush()
	out := Outcome{Stdout: stdout.buf.String(), Stderr: stderr.buf.String(), Duration: time.Since(start)}
	var exitErr *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case waitErr == nil:
	case errors.As(waitErr, &exitErr):
		out.ExitCode = exitErr.ExitStatus()
		if exitErr.Signal() != "" && out.ExitCode == 0 {
			out.ExitCode = 128 + 9
		}
	case errors.As(waitErr, &missing), errors.Is(waitErr, io.EOF):
		p.Drop(ep)
		return out, fmt.Errorf("%s: %w", ep.Label, ErrConnectionLost)
	default:
		return out, fmt.Errorf("%s: %w", ep.Label, waitErr)
	}
	return out, nil
}

// session opens a session, re-dialling once if the pooled connection died.
func (p *Pool) session(ctx context.Context, ep builtins.Endpoint) (*ssh.Session, error) {
	for attempt := 0; ; attempt++ {
		client, err := p.Client(ctx, ep)
		if err != nil {
			return nil, err
		}
		sess, err := client.NewSession()
		if err == nil {
			return sess, nil
		}
		p.Drop(ep)
		if attempt == 1 {
			return nil, fmt.Errorf("%s: the SSH connection broke and re-dialling did not help: %w", ep.Label, err)
		}
	}
}

// SFTP-free readiness check: a handshake and an authenticated no-op.
func (p *Pool) Ping(ctx context.Context, ep builtins.Endpoint) error {
	_, err := p.Exec(ctx, ep, Command{Cmd: "true", Timeout: 30 * time.Second})
	return err
}

// ProgressPrefix starts a line a remote command prints to say how far
// it has got (the stdlib's package installs print apt's lines so): such
// lines go to the live status line only, not to the output or the
// result.
const ProgressPrefix = "kumo-progress: "

// lineWriter keeps what a stream wrote and hands out complete lines;
// progress lines go to onProgress and are not kept.
type lineWriter struct {
	mu         sync.Mutex
	stream     string
	emit       func(stream, line string)
	onProgress func(line string)
	buf        bytes.Buffer
	partial    []byte
	dropped    int
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, b...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.line(w.partial[:i+1])
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > maxLine { // no newline in sight: cut it here
		w.line(w.partial)
		w.partial = nil
	}
	return len(b), nil
}

// line handles one line, with its newline unless it is the last.
func (w *lineWriter) line(raw []byte) {
	text := strings.TrimRight(string(raw), "\r\n")
	if rest, ok := strings.CutPrefix(text, ProgressPrefix); ok && w.stream == "stdout" {
		if w.onProgress != nil {
			w.onProgress(rest)
		}
		return
	}
	if room := maxCaptured - w.buf.Len(); room >= len(raw) {
		w.buf.Write(raw)
	} else {
		w.buf.Write(raw[:max(room, 0)])
		w.dropped += len(raw) - max(room, 0)
	}
	if w.emit != nil {
		w.emit(w.stream, text)
	}
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.line(w.partial)
	}
	w.partial = nil
	if w.dropped > 0 {
		fmt.Fprintf(&w.buf, "\n[kumo: %d more bytes not kept]\n", w.dropped)
	}
}

// envThroughStdin wraps cmd so that it first reads the variables from
// stdin, then runs with the rest of stdin. They come as one block of
// shell assignments (values single-quoted), ended by a line no value can
// hold by chance (a random marker): the shell reads and evals it with its
// builtins alone, no subshell or decoder per variable.
func envThroughStdin(vars map[string]string, cmd string) (wrapped, prelude string) {
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	var nonce [12]byte
	rand.Read(nonce[:])
	end := "kumo-env-end-" + hex.EncodeToString(nonce[:])
	var block strings.Builder
	for _, k := range names {
		block.WriteString("export " + k + "=" + Quote(vars[k]) + "\n") // k is a variable name: envVars checks
	}
	block.WriteString(end + "\n")
	wrapped = `kumo_env=; while IFS= read -r kumo_line && [ "$kumo_line" != ` + end + ` ]; do kumo_env="$kumo_env$kumo_line
"; done; eval "$kumo_env"; unset kumo_env kumo_line; exec /bin/sh -c ` + Quote(cmd)
	return wrapped, block.String()
}
