package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/all"
)

// badCalls call every builtin and method with an argument of the wrong
// type (or a wrong value where a type cannot be wrong), and say what the
// message must contain. ug, u, s and n are a group, a unit, a spec and a
// node from the recipe's first cell.
var badCalls = map[string][]struct{ call, want string }{
	"unit_group": {{`unit_group(42)`, "for parameter name: got int, want string"}, {`unit_group("g", create = 42)`, `for parameter "create": got int, want bool`}},
	"spec":       {{`spec(42, "small")`, "for parameter provider: got int, want string"}},
	"schedule": {
		{`schedule()`, "give rules (a dict of window to value) or file="},
		{`schedule({"mon-fri 09:00-18:00": 8})`, "otherwise= is missing"},
		{`schedule({"9-18": 8}, otherwise = 2)`, `window "9-18": want its times as HH:MM-HH:MM`},
		{`schedule({"funday 09:00-18:00": 8}, otherwise = 2)`, `unknown days "funday"`},
		{`schedule([], otherwise = 2)`, "for parameter rules: got list, want dict"},
		{`schedule({"09:00-10:00": 1}, otherwise = 2, file = "x")`, "give rules or file, not both"},
		{`schedule(file = "no-such.schedule", otherwise = 2)`, "reading the schedule: open"},
	},
	"placement": {
		{`placement(42)`, "for parameter candidates: got int, want list"},
		{`placement([42])`, "for parameter candidates: item 0: got int, want spec"},
		{`placement([s], minimize = "time")`, `minimize="time": kumo minimizes "cost"`},
		{`placement([s], max_price_hour = "cheap")`, "for parameter max_price_hour: got string, want float or None"},
		{`placement([spec("aws", "small")], max_price_hour = 0.001)`, "every candidate costs more than max_price_hour: aws/small: $0.0208/h is over max_price_hour $0.0010/h"},
		{`placement([s], max_price_hour = -1)`, "max_price_hour=-1: want a price per hour of 0 or more"},
		{`placement([s], block_for = "soon")`, `block_for="soon": want a duration such as "10m", or "0s" for none`},
	},
	"secret": {{`secret(42)`, "for parameter name: got int, want string"}},
	"ssh_run": {
		{`ssh_run(42, "true")`, "for parameter target: want a node, an address or a list of them, got int"},
		{`ssh_run(n, 42)`, "for parameter cmd: got int, want string"},
		{`ssh_run(n, "true", timeout = "soon")`, `for parameter "timeout": "soon" is not a duration`},
		{`ssh_run(n, "true", env = {"A": [1]})`, "for parameter env: A: got list, want string or secret"},
	},
	"put_file": {
		{`put_file(42, "f", content = "x")`, "for parameter target: want a node, an address or a list of them, got int"},
		{`put_file(n, "f", content = 42)`, "for parameter content: got int, want string, bytes or secret"},
	},
	"get_file":  {{`get_file(42, "f")`, "for parameter target: want a node, an address or a list of them, got int"}},
	"read_file": {{`read_file(42)`, "read_file: give the file as a string literal"}, {`read_file("no-such-file.txt")`, "read_file: no-such-file.txt: no such file or directory"}},
	"wait_port": {{`wait_port(n, "x")`, "for parameter port: got string, want int"}},
	"wait_http": {{`wait_http(42)`, "for parameter url: got int, want string"}},
	"mesh": {
		{`mesh(42, [n])`, "for parameter name: got int, want string"},
		{`mesh("no spaces", [n])`, `name "no spaces": want 1 to 12 letters, digits and -`},
		{`mesh("lab", [n], range = "10.0.0.0/31")`, `range "10.0.0.0/31": want an IPv4 prefix of at least 4 addresses`},
		{`mesh("lab", [n])`, "runs its commands on this host, as you"},
	},
	"UnitGroup.create_unit":       {{`ug.create_unit(42, s)`, "for parameter name: got int, want string"}, {`ug.create_unit("v", "small")`, "for parameter spec: got string, want spec"}},
	"UnitGroup.units":             {{`ug.units(42)`, "got 1 arguments, want at most 0"}},
	"UnitGroup.nodes":             {{`ug.nodes(node_state = 42)`, "for parameter node_state: got int, want string or None"}},
	"UnitGroup.find_ip_addresses": {{`ug.find_ip_addresses(node_state = 42)`, "for parameter node_state: got int, want string or None"}},
	"UnitGroup.delete":            {{`ug.delete(42)`, "got 1 arguments, want at most 0"}},
	"UnitGroup.set_vars":          {{`ug.set_vars(42)`, "give variables by name"}, {`ug.set_vars(f = len)`, "variable f: cannot journal a value of type builtin_function_or_method"}},
	"secret.generate":             {{`secret.generate("pw", length = 4)`, "length=4: want 8 to 4096"}, {`secret.generate("pw", alphabet = "emoji")`, `alphabet "emoji": want alnum, hex or base64`}},
	"secret.format":               {{`secret.format("{a}{b}", a = "x")`, "the template uses {b}, which is not given (have: a)"}, {`secret.format("x", a = [])`, "value a: got list, want string, number or secret"}},
	"UnitGroup.vars":              {{`ug.vars(42)`, "got 1 arguments, want at most 0"}},
	"Unit.nodes":                  {{`u.nodes(node_state = [])`, "for parameter node_state: got list, want string or None"}},
	"Unit.find_ip_addresses":      {{`u.find_ip_addresses(node_state = [])`, "for parameter node_state: got list, want string or None"}},
	"Unit.add_nodes":              {{`u.add_nodes("two")`, "for parameter n: got string, want int"}, {`u.add_nodes(1, spec = "aws")`, "for parameter spec: got string, want spec, placement or None"}},
	"Unit.delete_nodes":           {{`u.delete_nodes(count = "x")`, "for parameter count: want a positive int"}, {`u.delete_nodes(nodes = "u-1")`, "for parameter nodes: got string, want list"}},
	"Unit.power_off":              {{`u.power_off(42)`, "got 1 arguments, want at most 0"}},
	"Unit.power_on":               {{`u.power_on(timeout = [])`, `for parameter "timeout": got list, want a duration string or seconds`}},
	"Unit.delete":                 {{`u.delete(42)`, "got 1 arguments, want at most 0"}},
}

// TestEveryBuiltinRefusesBadArgumentsWithExit2 runs each bad call as a
// recipe cell through the real command: exit 2, the message names the
// parameter, and the call made nothing (still one node).
func TestEveryBuiltinRefusesBadArgumentsWithExit2(t *testing.T) {
	for _, d := range all.Docs() {
		if d.Kind == builtins.DocBuiltin && badCalls[d.Name] == nil {
			t.Errorf("no bad call for %s: add one to badCalls", d.Name)
		}
	}
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	state := filepath.Join(dir, "state.db")
	setup := "# %% Setup\nug = unit_group(\"g\")\ns = spec(\"local\", \"small\")\nu = ug.create_unit(\"u\", s)\nn = u.nodes()[0]\n"
	t.Cleanup(func() { runKumo(t, "destroy", "--state", state, "--yes") })
	for name, calls := range badCalls {
		for _, bc := range calls {
			recipe := filepath.Join(dir, "bad.star")
			os.WriteFile(recipe, []byte(setup+"# %% Call\n"+bc.call+"\n"), 0o644)
			code, _, stderr := runKumo(t, "run", "--state", state, recipe)
			if code != exitBadInput || !strings.Contains(stderr, bc.want) || !strings.Contains(stderr, "bad.star:7:") {
				t.Errorf("%s: %s: exit %d, want 2 and %q at bad.star:7:\n%s", name, bc.call, code, bc.want, stderr)
			}
		}
	}
	_, out, _ := runKumo(t, "status", "--state", state, "--cached")
	if strings.Count(out, "u-") != 1 {
		t.Errorf("the bad calls made or deleted nodes:\n%s", out)
	}
}

// runKumo runs a kumo command in this process.
func runKumo(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd(IO{In: strings.NewReader(""), Out: &out, Err: &errb})
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK, out.String(), errb.String()
	}
	if _, silent := err.(*silentError); !silent {
		errb.WriteString(err.Error())
	}
	return exitCode(err), out.String(), errb.String()
}
