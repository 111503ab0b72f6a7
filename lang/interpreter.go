package lang

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/stdlib"
)

// An Interpreter runs the cells of a recipe, or REPL chunks, one after another
// in one set of globals.
type Interpreter struct {
	Thread  *starlark.Thread
	Globals starlark.StringDict
	Dir     string // where relative loads of the top level resolve

	// WrapStep, if set, stands in for each public function of a stdlib
	// module (name "pkg.install") in what loading the module gives: kumo
	// plan wraps them so that a step needing a live value does not stop
	// the plan.
	WrapStep func(name string, fn *starlark.Function) starlark.Value
	// KeepValue makes a cell that ends with an expression keep its value
	// in the global _, as Python's notebooks show the last expression:
	// the kernel shows it.
	KeepValue bool

	builtins starlark.StringDict
	modules  map[string]*moduleEntry
	digests  map[string]string // module key -> ModuleDigest
}

type moduleEntry struct {
	globals starlark.StringDict
	err     error
}

// NewInterpreter makes an interpreter whose globals start as the given builtins.
// ExecREPLChunk knows no predeclared names besides the Universe, so the
// builtins are globals of the recipe (a recipe may shadow them).
func NewInterpreter(dir string, builtins starlark.StringDict) *Interpreter {
	s := &Interpreter{Dir: dir, builtins: builtins, modules: map[string]*moduleEntry{}, digests: map[string]string{}}
	s.Globals = starlark.StringDict{}
	for k, v := range builtins {
		s.Globals[k] = v
	}
	s.Thread = &starlark.Thread{Name: "recipe", Load: s.load}
	starkit.SetRecipeDir(s.Thread, dir)
	return s
}

// ExecCell runs one cell of recipe path in the interpreter's globals.
func (s *Interpreter) ExecCell(ctx context.Context, path string, c *Cell) error {
	if !c.Runnable() {
		return nil
	}
	f, err := c.Parse(path)
	if err != nil {
		return &starkit.InputError{Err: err}
	}
	if s.KeepValue {
		delete(s.Globals, "_")
		if n := len(f.Stmts); n > 0 {
			if e, ok := f.Stmts[n-1].(*syntax.ExprStmt); ok {
				start, _ := e.X.Span()
				f.Stmts[n-1] = &syntax.AssignStmt{OpPos: start, Op: syntax.EQ, LHS: &syntax.Ident{NamePos: start, Name: "_"}, RHS: e.X}
			}
		}
	}
	return s.ExecFile(ctx, f)
}

// ExecFile runs a parsed chunk. Resolution errors (an undefined name) are
// input errors; everything else is the chunk failing at run time.
func (s *Interpreter) ExecFile(ctx context.Context, f *syntax.File) error {
	s.Thread.Uncancel() // a Ctrl-C in an earlier chunk must not poison the next
	starkit.SetContext(s.Thread, ctx)
	stop := context.AfterFunc(ctx, func() { s.Thread.Cancel("interrupted") })
	defer stop()
	err := starlark.ExecREPLChunk(f, s.Thread, s.Globals)
	if evalErr, ok := err.(*starlark.EvalError); ok {
		// A load of a name the module does not define: Starlark's own
		// message, with no error type of its own to tell it by.
		if strings.HasPrefix(evalErr.Msg, "load: name ") {
			return &starkit.InputError{Err: err}
		}
	} else if err != nil {
		return &starkit.InputError{Err: err} // resolve errors come back unwrapped
	}
	return err
}

// load resolves load("@stdlib//name.star") to the modules embedded from
// stdlib/ and any other name to a file relative to the loading module
// (the recipe's folder for the recipe itself).
func (s *Interpreter) load(thread *starlark.Thread, module string) (starlark.StringDict, error) {
	key, src, err := s.readModule(thread, module)
	if err != nil {
		return nil, err
	}
	if e, ok := s.modules[key]; ok {
		if e == nil {
			return nil, starkit.Inputf("%s loads itself, through the modules it loads: break the cycle", module)
		}
		return e.globals, e.err
	}
	s.modules[key] = nil
	// The module runs on the loading thread itself, like a function call:
	// it sees the same context, print, run env and journal that builtins
	// reach through thread locals, with no list of them to keep in step,
	// and its frames join the backtrace. Only the folder its own relative
	// loads resolve against changes while it runs.
	outer := thread.Local(moduleDirKey)
	thread.SetLocal(moduleDirKey, moduleDir(key))
	globals, err := starlark.ExecFileOptions(FileOptions, thread, key, src, s.builtins)
	thread.SetLocal(moduleDirKey, outer)
	if err == nil {
		globals.Freeze()
		if strings.HasPrefix(key, stdlibPrefix) {
			starkit.LearnSteps(thread, globals)
			if s.WrapStep != nil {
				globals = wrapSteps(globals, s.WrapStep)
			}
		}
	} else if _, failed := err.(*starlark.EvalError); !failed {
		err = &starkit.InputError{Err: err} // a syntax or resolve error in the module
	}
	s.modules[key] = &moduleEntry{globals, err}
	return globals, err
}

const moduleDirKey = "kumo.moduledir"

// moduleDir is the folder relative loads from inside module key resolve
// against; stdlib modules load their siblings with "@stdlib//".
func moduleDir(key string) string {
	if strings.HasPrefix(key, stdlibPrefix) {
		return stdlibPrefix
	}
	return filepath.Dir(key)
}

const stdlibPrefix = "@stdlib//"

func (s *Interpreter) readModule(thread *starlark.Thread, module string) (key string, src []byte, err error) {
	dir := s.Dir
	if d, ok := thread.Local(moduleDirKey).(string); ok {
		dir = d
	}
	return readModule(dir, module)
}

// readModule reads module as loaded from a module in dir (stdlibPrefix
// for a stdlib module) and returns its key, the name it is cached under.
func readModule(dir, module string) (key string, src []byte, err error) {
	if dir == stdlibPrefix && !strings.HasPrefix(module, "@") {
		module = stdlibPrefix + module // stdlib modules load their siblings
	}
	if name, ok := strings.CutPrefix(module, stdlibPrefix); ok {
		src, err := fs.ReadFile(stdlib.FS, name)
		if err != nil {
			return "", nil, &starkit.InputError{Err: fmt.Errorf("load: no module %s in kumo's stdlib (have: %s)", module, strings.Join(stdlib.Names(), ", "))}
		}
		return module, src, nil
	}
	if strings.HasPrefix(module, "@") {
		return "", nil, &starkit.InputError{Err: fmt.Errorf("load: %s: only @stdlib// modules and paths relative to the recipe can be loaded", module)}
	}
	path := module
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, module)
	}
	src, err = os.ReadFile(path)
	if err != nil {
		hint := ""
		if _, serr := fs.Stat(stdlib.FS, module); serr == nil {
			hint = fmt.Sprintf(`; kumo's own module is load("@stdlib//%s", ...)`, module)
		}
		return "", nil, &starkit.InputError{Err: fmt.Errorf("load: %v%s", err, hint)}
	}
	return path, src, nil
}

// ModuleDigest identifies the source of module as loaded from the
// recipe, with the modules it loads in turn: it changes when any of
// their files does. Replay compares it, so a cell that loads an edited
// module runs again. Digests are cached for the interpreter.
func (s *Interpreter) ModuleDigest(module string) (string, error) {
	key, src, err := readModule(s.Dir, module)
	if err != nil {
		return "", err
	}
	return s.moduleDigest(key, src, map[string]bool{})
}

// KeyDigest is ModuleDigest of a module by its key (a function's
// file name), or "" if it is not a module of this interpreter.
func (s *Interpreter) KeyDigest(key string) string {
	if d, ok := s.digests[key]; ok {
		return d
	}
	dir, module := filepath.Dir(key), key
	if strings.HasPrefix(key, stdlibPrefix) {
		dir = stdlibPrefix
	}
	k, src, err := readModule(dir, module)
	if err != nil {
		return ""
	}
	d, _ := s.moduleDigest(k, src, map[string]bool{})
	return d
}

func (s *Interpreter) moduleDigest(key string, src []byte, visiting map[string]bool) (string, error) {
	if d, ok := s.digests[key]; ok {
		return d, nil
	}
	if visiting[key] {
		return "cycle:" + key, nil
	}
	visiting[key] = true
	h := sha256.New()
	h.Write(src)
	// Its own loads: parse for load statements only.
	if f, err := FileOptions.Parse(key, src, 0); err == nil {
		for _, stmt := range f.Stmts {
			if l, ok := stmt.(*syntax.LoadStmt); ok {
				k, sub, err := readModule(moduleDir(key), l.ModuleName())
				if err != nil {
					return "", err
				}
				d, err := s.moduleDigest(k, sub, visiting)
				if err != nil {
					return "", err
				}
				fmt.Fprintf(h, "\x00%s=%s", l.ModuleName(), d)
			}
		}
	}
	d := hex.EncodeToString(h.Sum(nil)[:12])
	s.digests[key] = d
	return d, nil
}

// ExecChunk runs a REPL chunk. A chunk that is a single expression is
// evaluated and its value returned (None otherwise), as Python's REPL does.
func (s *Interpreter) ExecChunk(ctx context.Context, f *syntax.File) (starlark.Value, error) {
	if len(f.Stmts) == 1 {
		if stmt, ok := f.Stmts[0].(*syntax.ExprStmt); ok {
			s.Thread.Uncancel()
			starkit.SetContext(s.Thread, ctx)
			stop := context.AfterFunc(ctx, func() { s.Thread.Cancel("interrupted") })
			defer stop()
			v, err := starlark.EvalExprOptions(f.Options, s.Thread, stmt.X, s.Globals)
			if err == nil {
				s.Globals["_"] = v
			}
			return v, err
		}
	}
	return starlark.None, s.ExecFile(ctx, f)
}
