package builtins_test

import (
	"math/big"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/secret"
	"github.com/kumo-dev/kumo/builtins/ssh"
	"github.com/kumo-dev/kumo/builtins/units"
)

// codecValues are values of every kind the journal holds.
func codecValues() []starlark.Value {
	node := &units.Node{ID: 7, Run: "r", Group: "g", Unit: "u", Name: "u-1", State: "RUNNING", IP: "127.0.0.1", Port: 2222, Provider: "local", ProviderID: "abc"}
	dict := starlark.NewDict(2)
	dict.SetKey(starlark.String("b"), starlark.MakeInt(2))
	dict.SetKey(starlark.MakeInt(1), starlark.None)
	return []starlark.Value{
		starlark.None, starlark.True, starlark.MakeInt(-3), starlark.MakeBigInt(new(big.Int).Lsh(big.NewInt(1), 100)),
		starlark.Float(1.5), starlark.String("héllo\n\x00"), starlark.Bytes("\xff\x00"),
		starlark.NewList([]starlark.Value{starlark.MakeInt(1), starlark.String("x")}),
		starlark.Tuple{starlark.String("a"), starlark.Tuple{}},
		dict,
		starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{"status": starlark.MakeInt(200), "body": starlark.String("ok")}),
		node,
		&units.Unit{Run: "r", Group: "g", Name: "u", Provider: "local"},
		&units.UnitGroup{Run: "r", Name: "g"},
		&ssh.Result{Node: node, Stdout: "out", Stderr: "err", ExitCode: 3, Duration: 0.25},
		starlark.NewList([]starlark.Value{&ssh.Result{Node: starlark.String("10.0.0.1:22"), Stdout: "x"}}),
	}
}

func TestCodecRoundTrip(t *testing.T) {
	values := codecValues()
	node := values[11].(*units.Node)
	for _, v := range values {
		enc, err := builtins.Encode(v)
		if err != nil {
			t.Errorf("Encode(%v): %v", v, err)
			continue
		}
		got, err := builtins.Decode(enc)
		if err != nil {
			t.Errorf("Decode(%s): %v", enc, err)
			continue
		}
		if got.Type() != v.Type() || got.String() != v.String() {
			t.Errorf("round trip of %s (%s) gave %s (%s)", v, v.Type(), got, got.Type())
		}
	}
	// Fields that String() does not show survive too.
	enc, _ := builtins.Encode(&ssh.Result{Node: node, Stdout: "out", Stderr: "err", ExitCode: 3, Duration: 0.25})
	back, _ := builtins.Decode(enc)
	r := back.(*ssh.Result)
	if r.Stdout != "out" || r.Stderr != "err" || r.Duration != 0.25 || r.Node.(*units.Node).Port != 2222 {
		t.Errorf("decoded result %+v", r)
	}
}

// A secret is journaled (a group variable, what secret.generate returns)
// as its name alone; text made with secret.format is not journaled.
func TestSecretsAreJournaledByNameOnly(t *testing.T) {
	t.Setenv("KUMO_SECRET_PW", "hunter2-value")
	enc, err := builtins.Encode(starlark.NewList([]starlark.Value{&secret.Secret{Name: "pw"}}))
	if err != nil || enc != `{"t":"list","v":[{"t":"secret","v":{"name":"pw"}}]}` {
		t.Fatalf("Encode(secret) = %s, %v", enc, err)
	}
	back, err := builtins.Decode(enc)
	if err != nil || back.(*starlark.List).Index(0).(*secret.Secret).Name != "pw" {
		t.Errorf("Decode = %v, %v", back, err)
	}
	format, _ := secret.Global().(starlark.HasAttrs).Attr("format")
	text, err := starlark.Call(&starlark.Thread{}, format, starlark.Tuple{starlark.String("pw={pw}")}, []starlark.Tuple{{starlark.String("pw"), &secret.Secret{Name: "pw"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := builtins.Encode(text); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Encode(formatted secret) = %v, want a refusal", err)
	}
}

func TestDescribeCallShowsIdentityNotState(t *testing.T) {
	a := &units.Node{ID: 7, Run: "r", Group: "g", Unit: "u", Name: "u-1", State: "RUNNING"}
	b := &units.Node{ID: 7, Run: "r", Group: "g", Unit: "u", Name: "u-1", State: "POWER_OFF"}
	kw := []starlark.Tuple{{starlark.String("env"), starlark.NewDict(0)}}
	da := builtins.DescribeCall("ssh_run", nil, starlark.Tuple{a, starlark.String("ls")}, kw)
	db := builtins.DescribeCall("ssh_run", nil, starlark.Tuple{b, starlark.String("ls")}, kw)
	if da != db {
		t.Errorf("the same node in another state describes differently:\n%s\n%s", da, db)
	}
	want := `ssh_run(node:r/g/u/u-1#7, "ls", env={})`
	if da != want {
		t.Errorf("DescribeCall = %s, want %s", da, want)
	}
	s := builtins.DescribeCall("put_file", nil, starlark.Tuple{a, starlark.String("f")}, []starlark.Tuple{{starlark.String("content"), &secret.Secret{Name: "pw"}}})
	if !strings.Contains(s, "content=<secret pw>") {
		t.Errorf("secret described as %s", s)
	}
	if builtins.Digest(da) == builtins.Digest(s) {
		t.Error("different calls have the same digest")
	}
}

func TestMasker(t *testing.T) {
	var m builtins.Masker
	m.Add(`pa"ss`)
	m.Add("longer-secret")
	if got := m.Mask(`x longer-secret y pa"ss {"v":"pa\"ss"}`); got != `x ******** y ******** {"v":"********"}` {
		t.Errorf("Mask = %s", got)
	}
	var none *builtins.Masker
	if none.Mask("a") != "a" {
		t.Error("a nil masker changed text")
	}
}

// FuzzDecode: the journal codec never panics on what it reads back, and
// whatever decodes encodes again to a fixed point: a replayed value is
// journaled the same way as the live one.
func FuzzDecode(f *testing.F) {
	f.Add(`{"t":"list","v":[{"t":"int","v":"1"},{"t":"node","v":{"ID":1}}]}`)
	f.Add(`{"t":"dict","v":[[{"t":"str","v":"a"},{"t":"none"}]]}`)
	f.Add(`{"t":"struct","v":[["a",{"t":"bool","v":true}]]}`)
	f.Add(`{"t":"float","v":1e308}`)
	f.Add(`{"t":"int","v":"-123456789012345678901234567890"}`)
	f.Add(`{"t":"bytes","v":"/wA="}`)
	f.Add(`{"t":"secret","v":{"name":"db"}}`)
	f.Add(`{"t":"tuple","v":[{"t":"tuple","v":[]}]}`)
	for _, v := range codecValues() {
		if e, err := builtins.Encode(v); err == nil {
			f.Add(e)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := builtins.Decode(s)
		if err != nil {
			return
		}
		e1, err := builtins.Encode(v)
		if err != nil {
			t.Fatalf("decoded %s from %q but cannot encode it: %v", v, s, err)
		}
		v2, err := builtins.Decode(e1)
		if err != nil {
			t.Fatalf("cannot decode what was encoded (%s): %v", e1, err)
		}
		if e2, _ := builtins.Encode(v2); e2 != e1 {
			t.Fatalf("not a fixed point:\n%s\n%s", e1, e2)
		}
	})
}
