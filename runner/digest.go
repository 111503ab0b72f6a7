package runner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"sort"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/lang"
)

// A digester identifies Starlark values for reactive replay: two values
// with the same digest behave the same in a replayed cell.
//
// Plain data is digested by content, kumo's values (nodes, units, ssh
// results) by what they hold, including the token that tells a unit from
// a later one of the same name, and secrets by name only (their values
// must not be stored, even hashed). Functions have no content to compare,
// so a function is digested by where it is defined (the source of its
// cell, or of its module and the modules that one loads), its default
// values, the variables it closes over and the current values of the
// globals its body uses. Builtins are digested by name plus whatever
// outside input they read (the flavor catalog for spec()).
type digester struct {
	recipe  *lang.Recipe
	interp  *lang.Interpreter
	memo    map[starlark.Value]string // functions digested in this pass
	active  map[any]bool              // values being digested: cycles
	handles map[scope]bool            // when set, the handles met (see world.go)
	// unknowns are the planned calls whose results the values digested
	// since reset hold (see plan.go).
	unknowns []string
}

func newDigester(rec *lang.Recipe, s *lang.Interpreter) *digester {
	return &digester{recipe: rec, interp: s, memo: map[starlark.Value]string{}, active: map[any]bool{}}
}

// reset forgets memoized digests: values may have changed since.
func (d *digester) reset() {
	clear(d.memo)
	d.unknowns = nil
}

// digest is the hex digest of v (nil: an unset name).
func (d *digester) digest(v starlark.Value) string {
	h := sha256.New()
	d.write(h, v)
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func (d *digester) write(h hash.Hash, v starlark.Value) {
	d.noteHandle(v)
	switch v := v.(type) {
	case nil:
		h.Write([]byte("unset;"))
	case starlark.NoneType, starlark.Bool, starlark.Int, starlark.Float, starlark.String, starlark.Bytes:
		fmt.Fprintf(h, "%s:%s;", v.Type(), v.String())
	case *starlark.List:
		d.items(h, v, "list", v)
	case starlark.Tuple:
		d.items(h, v, "tuple", nil)
	case *starlark.Set:
		d.items(h, v, "set", v)
	case *starlark.Dict:
		if d.enter(h, v) {
			h.Write([]byte("dict("))
			for _, kv := range v.Items() {
				d.write(h, kv[0])
				d.write(h, kv[1])
			}
			h.Write([]byte(");"))
			delete(d.active, v)
		}
	case *starlarkstruct.Struct:
		h.Write([]byte("struct("))
		names := v.AttrNames()
		sort.Strings(names)
		for _, name := range names {
			x, _ := v.Attr(name)
			fmt.Fprintf(h, "%s=", name)
			d.write(h, x)
		}
		h.Write([]byte(");"))
	case *starlarkstruct.Module:
		fmt.Fprintf(h, "module:%s;", v.Name)
	case *starlark.Function:
		h.Write([]byte(d.function(v)))
	case *starlark.Builtin:
		fmt.Fprintf(h, "builtin:%s:%s;", v.Name(), builtins.InputDigest(v.Name()))
		if r := v.Receiver(); r != nil {
			d.write(h, r)
		}
	case *builtins.Unknown:
		d.unknowns = append(d.unknowns, v.From)
		fmt.Fprintf(h, "unknown:%p;", v) // never equal to a recorded value
	case builtins.SecretValue:
		fmt.Fprintf(h, "secret:%s;", v.SecretName())
	case builtins.Encodable:
		data, _ := json.Marshal(v.JournalData())
		fmt.Fprintf(h, "%s:%s;", v.JournalKind(), data)
	default:
		fmt.Fprintf(h, "%s:%s;", v.Type(), v.String())
	}
}

// enter guards against a value that contains itself.
func (d *digester) enter(h hash.Hash, v any) bool {
	if d.active[v] {
		h.Write([]byte("cycle;"))
		return false
	}
	d.active[v] = true
	return true
}

func (d *digester) items(h hash.Hash, it starlark.Iterable, kind string, self any) {
	if self != nil {
		if !d.enter(h, self) {
			return
		}
		defer delete(d.active, self)
	}
	h.Write([]byte(kind + "("))
	iter := it.Iterate()
	defer iter.Done()
	var x starlark.Value
	for iter.Next(&x) {
		d.write(h, x)
	}
	h.Write([]byte(");"))
}

func (d *digester) function(fn *starlark.Function) string {
	if s, ok := d.memo[fn]; ok {
		return s
	}
	if d.active[fn] {
		return "fn-cycle:" + fn.Name() + ";" // recursion: its digest is being made
	}
	d.active[fn] = true
	defer delete(d.active, fn)
	h := sha256.New()
	pos := fn.Position()
	fmt.Fprintf(h, "fn:%s:", fn.Name())
	if c := d.recipe.CellAt(int(pos.Line)); pos.Filename() == d.recipe.Path && c != nil {
		// Defined in the recipe: by its cell's source, so that edits of
		// other cells (which move it) do not count.
		fmt.Fprintf(h, "cell:%s@%d:%d;", c.Hash(), c.BodyLine(int(pos.Line)), pos.Col)
		globals := fn.Globals()
		for _, name := range d.recipe.FuncGlobals[lang.FuncKey(pos)] {
			fmt.Fprintf(h, "%s=", name)
			d.write(h, globals[name])
		}
	} else {
		// Defined in a module: modules are frozen once loaded, so their
		// source says it all, with the outside inputs of the builtins they
		// may call.
		fmt.Fprintf(h, "module:%s:%s@%d:%d;", d.interp.KeyDigest(pos.Filename()), builtins.InputDigest(""), pos.Line, pos.Col)
	}
	for i := 0; i < fn.NumParams(); i++ {
		if dv := fn.ParamDefault(i); dv != nil {
			fmt.Fprintf(h, "default%d=", i)
			d.write(h, dv)
		}
	}
	for i := 0; i < fn.NumFreeVars(); i++ {
		b, v := fn.FreeVar(i)
		fmt.Fprintf(h, "free:%s=", b.Name)
		d.write(h, v)
	}
	s := hex.EncodeToString(h.Sum(nil)[:12]) + ";"
	d.memo[fn] = s
	return s
}
