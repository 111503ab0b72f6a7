package ssh

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/starkit"
)

// Builtins of this family.
var Builtins = []*builtins.Def{{
	Name: "ssh_run",
	Doc: `ssh_run(target, cmd, user=None, sudo=False, env={}, stdin=None, timeout="10m", check=True, parallel=64, refuse_on_host=None, checkable=False)
Runs the shell command cmd on target: a node, an address ("10.0.0.5",
"host:2222") or a list of them, on up to parallel targets at once. Output
streams live, each line prefixed by the node's name. Returns a result (or
a list of results in target order) with .stdout .stderr .exit_code .node
.duration .ok. Each node's SSH connection is opened once per run and
reused by every later call.

user logs in as another user than the node's default; sudo=True runs the
command as root without a password prompt (sudo -n). env sets environment
variables, sent over SSH rather than on the command line, so a secret()
can be passed there safely; stdin may be a string or a secret(). The
command is killed after timeout. With check=True a non-zero exit fails the
cell once every target has finished, naming each failed node, its exit
code and the end of its stderr.

refuse_on_host="pkg.install" (who asks) refuses, before anything runs, a
target whose commands would run on kumo's own host (a local node, an
emulated instance without containers, a loopback address): the stdlib
passes it where a command changes the system (packages, accounts,
services), which must never happen to the host.

checkable=True declares that cmd honours $KUMO_CHECK: run with
KUMO_CHECK=1 (kumo check, kumo run --verify) it changes nothing and
prints one line for each thing that is not as it would make it, nothing
when all is. The stdlib's files, pkg, systemd and users steps are.`,
	Fn:        sshRun,
	Effectful: true,
	Plan:      planSSHRun,
	Check:     checkSSHRun,
}}

func planSSHRun(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (builtins.Effect, starlark.Value, error) {
	var target, rest starlark.Value
	var cmd string
	if len(args) < 2 {
		if err := builtins.Unpack(b, args, kwargs, "target", &target, "cmd", &cmd, "user?", &rest, "sudo?", &rest,
			"env?", &rest, "stdin?", &rest, "timeout?", &rest, "check?", &rest, "parallel?", &rest, "refuse_on_host?", &rest, "checkable?", &rest); err != nil {
			return builtins.Effect{}, nil, err
		}
	} else {
		target = args[0]
		cmd, _ = starlark.AsString(args[1])
	}
	t := builtins.TargetText(target)
	return builtins.Effect{Kind: builtins.EffectCommand, Target: t, What: "run on " + t + ": " + builtins.FirstLine(cmd)}, nil, nil
}

// RefuseOnHost fails for the first target that is kumo's own host: what
// would change its system must not run there.
func RefuseOnHost(eps []builtins.Endpoint, what string) error {
	for _, ep := range eps {
		if ep.OnHost() {
			return &starkit.InputError{Err: fmt.Errorf("%s: %s runs its commands on this host, as you (a local node, an emulated instance without containers, or a loopback address), and %s would change this host's system, so kumo does not run it. "+
				"Use nodes of their own: spec(\"container\", ...) as root, a cloud, or an emulator backed by containers (kumo emulate --backing container)", what, ep.Label, what)}
		}
	}
	return nil
}

// runCall is an ssh_run call, its arguments read.
type runCall struct {
	eps      []builtins.Endpoint
	many     bool
	cmd      string
	vars     map[string]string
	input    string
	limit    time.Duration
	sudo     bool
	check    bool // a non-zero exit fails the call
	parallel int
	// checkable: cmd honours $KUMO_CHECK (see the doc).
	checkable bool
}

func parseRun(thread *starlark.Thread, b *starlark.Builtin, env *builtins.Env, args starlark.Tuple, kwargs []starlark.Tuple) (*runCall, error) {
	var target starlark.Value
	var user starlark.Value = starlark.None
	var stdin starlark.Value = starlark.None
	timeout := builtins.Timeout(10 * time.Minute)
	var envDict *starlark.Dict
	c := &runCall{check: true, parallel: 64}
	var refuseOnHost starlark.Value = starlark.None
	if err := builtins.Unpack(b, args, kwargs, "target", &target, "cmd", &c.cmd, "user?", &user, "sudo?", &c.sudo,
		"env?", &envDict, "stdin?", &stdin, "timeout?", &timeout, "check?", &c.check, "parallel?", &c.parallel,
		"refuse_on_host?", &refuseOnHost, "checkable?", &c.checkable); err != nil {
		return nil, err
	}
	if c.parallel < 1 {
		return nil, builtins.Inputf(b, "parallel=%d: want at least 1", c.parallel)
	}
	c.limit = timeout.D()
	var err error
	c.eps, c.many, err = env.Targets(target)
	if err != nil {
		return nil, builtins.TargetError(b, err)
	}
	if what, ok := refuseOnHost.(starlark.String); ok {
		if err := RefuseOnHost(c.eps, string(what)); err != nil {
			return nil, err
		}
	} else if refuseOnHost != starlark.None {
		return nil, builtins.Inputf(b, "for parameter refuse_on_host: got %s, want string or None", refuseOnHost.Type())
	}
	if u, ok := user.(starlark.String); ok {
		for i := range c.eps {
			c.eps[i].User = string(u)
		}
	} else if user != starlark.None {
		return nil, builtins.Inputf(b, "for parameter user: got %s, want string or None", user.Type())
	}
	if c.vars, err = envVars(b, env, envDict); err != nil {
		return nil, err
	}
	if stdin != starlark.None {
		s, ok, err := builtins.TextArg(env, stdin)
		if err != nil {
			return nil, builtins.Wrap(b, err)
		}
		if !ok {
			return nil, builtins.Inputf(b, "for parameter stdin: got %s, want string, bytes or secret", stdin.Type())
		}
		c.input = s
	}
	return c, nil
}

// exec runs the call on its targets; show streams their output as the
// cell's. A target that could not run it, or (with check) exited
// non-zero, has an error.
func (c *runCall) exec(thread *starlark.Thread, b *starlark.Builtin, env *builtins.Env, show bool) ([]*Result, []error) {
	cmd := c.cmd
	if c.sudo {
		names := make([]string, 0, len(c.vars))
		for k := range c.vars {
			names = append(names, k)
		}
		cmd = SudoWrap(cmd, names...)
	}
	ctx := starkit.Context(thread)
	pool := PoolOf(env)
	progress := env.StepProgress(thread, b, "", c.eps)
	defer progress.End()
	results := make([]*Result, len(c.eps))
	errs := make([]error, len(c.eps))
	sem := make(chan struct{}, c.parallel)
	var wg sync.WaitGroup
	for i, ep := range c.eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			defer progress.Done()
			out, err := pool.Exec(ctx, ep, Command{
				Cmd: cmd, Env: c.vars, Stdin: strings.NewReader(c.input), Timeout: c.limit,
				OnLine: func(stream, line string) {
					if show {
						env.Line(ep.Label, stream, line)
					}
					progress.Line(ep.Label, line)
				},
				OnProgress: func(line string) { progress.Line(ep.Label, line) },
			})
			if err != nil {
				errs[i] = err
				return
			}
			out.Stdout, out.Stderr = env.Secrets.Mask(out.Stdout), env.Secrets.Mask(out.Stderr)
			results[i] = &Result{Node: ep.Value, Stdout: out.Stdout, Stderr: out.Stderr, ExitCode: out.ExitCode, Duration: out.Duration.Seconds()}
			if out.ExitCode != 0 {
				errs[i] = errors.New(failure(ep.User, ep.Label, out, c.sudo))
			}
		}()
	}
	wg.Wait()
	return results, errs
}

func sshRun(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	env, err := builtins.FromThread(thread)
	if err != nil {
		return nil, err
	}
	c, err := parseRun(thread, b, env, args, kwargs)
	if err != nil {
		return nil, err
	}
	results, errs := c.exec(thread, b, env, true)
	var failures []string
	for i := range c.eps {
		if errs[i] != nil && (results[i] == nil || c.check) {
			failures = append(failures, errs[i].Error())
		}
	}
	if len(failures) > 0 {
		if len(c.eps) == 1 {
			return nil, fmt.Errorf("%s: %s", b.Name(), failures[0])
		}
		return nil, fmt.Errorf("%s: failed on %d of %d targets:\n  %s", b.Name(), len(failures), len(c.eps), strings.Join(failures, "\n  "))
	}
	if !c.many {
		return results[0], nil
	}
	list := make([]starlark.Value, len(results))
	for i, r := range results {
		list[i] = r
	}
	return starlark.NewList(list), nil
}

// checkSSHRun runs a checkable call with KUMO_CHECK=1: each line its
// command prints on a node is a drift there. A node that cannot be asked
// is unchecked, saying why; nothing is changed.
func checkSSHRun(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) ([]builtins.Drift, bool, error) {
	env, err := builtins.FromThread(thread)
	if err != nil {
		return nil, false, err
	}
	c, err := parseRun(thread, b, env, args, kwargs)
	if err != nil || !c.checkable {
		return nil, false, err
	}
	vars := map[string]string{"KUMO_CHECK": "1"}
	for k, v := range c.vars {
		vars[k] = v
	}
	c.vars = vars
	results, errs := c.exec(thread, b, env, false)
	var drift []builtins.Drift
	for i, ep := range c.eps {
		if errs[i] != nil {
			drift = append(drift, builtins.Drift{Node: ep.Label, What: "not checked: " + errs[i].Error(), Unchecked: true})
			continue
		}
		for _, line := range strings.Split(results[i].Stdout, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				drift = append(drift, builtins.Drift{Node: ep.Label, What: line})
			}
		}
	}
	return drift, true, nil
}

func envVars(b *starlark.Builtin, env *builtins.Env, d *starlark.Dict) (map[string]string, error) {
	vars := map[string]string{}
	if d == nil {
		return vars, nil
	}
	for _, kv := range d.Items() {
		k, ok := starlark.AsString(kv[0])
		if !ok || !isVarName(k) {
			return nil, builtins.Inputf(b, "for parameter env: keys must be variable names, got %s", kv[0])
		}
		v, ok, err := builtins.TextArg(env, kv[1])
		if err != nil {
			return nil, builtins.Wrap(b, err)
		}
		if !ok {
			switch x := kv[1].(type) {
			case starlark.Int, starlark.Float, starlark.Bool:
				v = x.String()
			default:
				return nil, builtins.Inputf(b, "for parameter env: %s: got %s, want string or secret", k, kv[1].Type())
			}
		}
		vars[k] = v
	}
	return vars, nil
}

// SudoWrap runs cmd as root: directly when already root, else through
// non-interactive sudo, which fails at once instead of waiting for a
// password nobody can type. sudo resets the environment, so the
// variables the call was given (names) are asked to be kept.
func SudoWrap(cmd string, names ...string) string {
	q := Quote(cmd)
	keep := ""
	if len(names) > 0 {
		sorted := append([]string(nil), names...)
		sort.Strings(sorted)
		keep = " --preserve-env=" + strings.Join(sorted, ",")
	}
	return `if [ "$(id -u)" = 0 ]; then exec /bin/sh -c ` + q + `; else exec sudo -n` + keep + ` -- /bin/sh -c ` + q + `; fi`
}

// Quote makes s one word for a POSIX shell, whatever it holds.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// failure describes a command that exited non-zero on label.
func failure(user, label string, out Outcome, sudo bool) string {
	msg := fmt.Sprintf("%s: exit code %d%s", label, out.ExitCode, tail(out.Stderr))
	if sudo && strings.Contains(out.Stderr, "a password is required") {
		msg = fmt.Sprintf("%s: sudo needs a password for %s there, and kumo never types one: allow it without (NOPASSWD in sudoers) or log in as root", label, user)
	}
	return msg
}

// tail is the end of stderr for an error message.
func tail(stderr string) string {
	s := strings.TrimRight(stderr, "\n")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return "; stderr ends:\n      " + strings.Join(lines, "\n      ")
}

// Result is what ssh_run returns for one target.
type Result struct {
	Node     starlark.Value // the node, or the address string
	Stdout   string
	Stderr   string
	ExitCode int
	Duration float64 // seconds
}

var _ builtins.Encodable = (*Result)(nil)

func (r *Result) String() string {
	return fmt.Sprintf("<ssh_run result %s exit_code=%d>", label(r.Node), r.ExitCode)
}
func (r *Result) Type() string          { return "ssh_result" }
func (r *Result) Freeze()               {}
func (r *Result) Truth() starlark.Bool  { return starlark.True }
func (r *Result) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: ssh_result") }
func (r *Result) AttrNames() []string {
	return []string{"duration", "exit_code", "node", "ok", "stderr", "stdout"}
}
func (r *Result) Attr(name string) (starlark.Value, error) {
	switch name {
	case "stdout":
		return starlark.String(r.Stdout), nil
	case "stderr":
		return starlark.String(r.Stderr), nil
	case "exit_code":
		return starlark.MakeInt(r.ExitCode), nil
	case "node":
		return r.Node, nil
	case "duration":
		return starlark.Float(r.Duration), nil
	case "ok":
		return starlark.Bool(r.ExitCode == 0), nil
	}
	return nil, nil
}

func label(v starlark.Value) string {
	if s, ok := v.(starlark.String); ok {
		return string(s)
	}
	if n, ok := v.(interface{ NodeName() string }); ok {
		return n.NodeName()
	}
	return v.String()
}

type resultData struct {
	Node     json.RawMessage `json:"node"`
	Stdout   string          `json:"stdout"`
	Stderr   string          `json:"stderr"`
	ExitCode int             `json:"exit_code"`
	Duration float64         `json:"duration"`
}

func (r *Result) JournalKind() string  { return "ssh.result" }
func (r *Result) DigestString() string { return r.String() }
func (r *Result) JournalData() any {
	node, _ := builtins.EncodeValue(r.Node)
	return resultData{Node: node, Stdout: r.Stdout, Stderr: r.Stderr, ExitCode: r.ExitCode, Duration: r.Duration}
}

func init() {
	builtins.RegisterDecoder("ssh.result", func(data json.RawMessage) (starlark.Value, error) {
		var d resultData
		if err := json.Unmarshal(data, &d); err != nil {
			return nil, err
		}
		node, err := builtins.DecodeValue(d.Node)
		if err != nil {
			return nil, err
		}
		return &Result{Node: node, Stdout: d.Stdout, Stderr: d.Stderr, ExitCode: d.ExitCode, Duration: d.Duration}, nil
	})
}

func isVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// ValueDocs document the values of this family, for kumo doc.
var ValueDocs = []*builtins.Def{{
	Name: "ssh_result", Kind: builtins.DocValue,
	Doc: `what ssh_run() returns for one target
  .stdout     what the command printed (secrets masked)
  .stderr     what it printed on stderr
  .exit_code  its exit status
  .ok         exit_code == 0
  .node       the node (or the address) it ran on
  .duration   seconds it took`,
}}
