package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/chzyer/readline"
	"github.com/spf13/cobra"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/all"
	"github.com/kumo-dev/kumo/fleet"
	"github.com/kumo-dev/kumo/internal/render"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/runner"
	"github.com/kumo-dev/kumo/session"
	"github.com/kumo-dev/kumo/state"
)

// ReplOptions are the inputs of `kumo repl`.
type ReplOptions struct {
	IO
	Store       func() (*state.Store, error)
	File        string
	Name        string
	Interactive bool // a terminal: line editing, history, completion
}

func newCmdRepl(f *factory, runF func(*ReplOptions) error) *cobra.Command {
	opts := &ReplOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "repl [FILE]",
		Short: "An interactive Starlark prompt with kumo's builtins",
		Long: `An interactive prompt with every builtin. With FILE, the recipe's
succeeded cells are replayed first (no side effects), so its globals (unit
groups, nodes, functions) are at hand. Resources created at the prompt are
recorded in the run, so kumo status shows them and kumo destroy removes them;
a session that creates nothing leaves no run behind.
Line editing, history (kept beside the state, private) and Tab completion
of names and attributes are on when the prompt is a terminal. help(name)
documents a builtin; Ctrl-D on an empty line, exit() or quit() leave.`,
		Example: `  kumo repl                     # builtins at hand, state in ./.kumo
  kumo repl lab.star            # the recipe's globals (ug, nodes...) replayed first
  >>> ssh_run(n, "uptime")
  >>> help("create_unit")
  >>> exit()                    # or Ctrl-D`,
		Args:              argsUsage(cobra.MaximumNArgs(1)),
		ValidArgsFunction: completeRecipeFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.File = args[0]
			}
			opts.Store = f.locator().StoreFor(opts.File)
			opts.Interactive = render.IsTerminal(f.In) && render.IsTerminal(f.Out)
			if runF != nil {
				return runF(opts)
			}
			return replRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", "run to work in (default: the recipe's name, or \"repl\")")
	return cmd
}

func replRun(opts *ReplOptions) error {
	name := opts.Name
	if name == "" {
		name = "repl"
		if opts.File != "" {
			name = strings.TrimSuffix(filepath.Base(opts.File), filepath.Ext(opts.File))
		}
	}
	if err := session.ValidRunName(name); err != nil {
		return err
	}
	globals := all.Globals()
	var recipe *lang.Recipe
	if opts.File != "" {
		var err error
		if recipe, err = lang.ReadRecipe(opts.File, globals.Has); err != nil {
			return err
		}
	}
	store, err := opts.Store()
	if err != nil {
		return err
	}
	defer store.Close()
	held, err := session.Hold(store, name)
	if err != nil {
		return err
	}
	defer held.Release()
	// The run is recorded only if the session leaves something behind.
	defer keepRunIfUsed(store, name)
	env := held.Env

	var interp *lang.Interpreter
	if recipe != nil {
		r := runner.New(runner.Options{Recipe: recipe, Run: name, ReplayOnly: true, Builtins: globals, Env: env})
		sum, err := r.Run(context.Background())
		if err != nil {
			return fmt.Errorf("replaying %s: %w", opts.File, err)
		}
		interp = r.Interpreter()
		fmt.Fprintf(opts.Out, "kumo: replayed %d cell(s) of %s into run %q\n", len(sum.Cells), opts.File, name)
	} else {
		dir, _ := os.Getwd()
		interp = lang.NewInterpreter(dir, globals)
		env.Attach(interp.Thread)
	}
	// At the prompt, builtins run live and are not journaled: there is no
	// cell to replay them into. Resources are recorded all the same.
	builtins.SetInterceptor(interp.Thread, nil)
	env.Out = &replOutput{w: opts.Out}
	interp.Thread.Print = func(_ *starlark.Thread, msg string) { fmt.Fprintln(opts.Out, env.Secrets.Mask(msg)) }
	quit := false
	for k, v := range replBuiltins(opts.IO, &quit) {
		if _, shadowed := interp.Globals[k]; !shadowed {
			interp.Globals[k] = v
		}
	}

	read, closeReader, err := newChunkReader(opts, store, interp)
	if err != nil {
		return err
	}
	defer closeReader()
	if opts.Interactive {
		fmt.Fprintf(opts.Out, "kumo repl — run %q. Tab completes, help(name) documents a builtin, Ctrl-D or exit() leaves.\n", name)
	}
	for !quit {
		f, err := read()
		if errors.Is(err, io.EOF) {
			if opts.Interactive {
				fmt.Fprintln(opts.Out)
			}
			return nil
		}
		if errors.Is(err, readline.ErrInterrupt) {
			continue
		}
		if err != nil {
			fmt.Fprintln(opts.Err, lang.FormatError(err))
			continue
		}
		ctx, stop := interruptible(context.Background())
		v, err := interp.ExecChunk(ctx, f)
		stop()
		if err != nil {
			fmt.Fprintln(opts.Err, env.Secrets.Mask(lang.FormatError(err)))
			continue
		}
		if v != nil && v != starlark.None {
			fmt.Fprintln(opts.Out, env.Secrets.Mask(v.String()))
		}
	}
	return nil
}

// keepRunIfUsed records a REPL run that made resources, and forgets one
// that holds nothing: a session that only looked around leaves no run.
func keepRunIfUsed(store *state.Store, name string) {
	holds, err := fleet.New(store, name, nil).Holds()
	if err != nil {
		return
	}
	r, had, _ := store.GetRun(name)
	switch {
	case holds && !had:
		store.EnsureRun(name)
	case !holds && had && r.Status == state.RunREPL:
		if cells, _ := store.Cells(name); len(cells) == 0 {
			store.ForgetRun(name)
		}
	}
}

// replBuiltins are the names only the prompt has: exit() and quit()
// leave it, help(name) prints a builtin's documentation.
func replBuiltins(stdio IO, quit *bool) starlark.StringDict {
	leave := func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if err := starlark.UnpackArgs(b.Name(), args, kwargs); err != nil {
			return nil, err
		}
		*quit = true
		return starlark.None, nil
	}
	help := func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var x starlark.Value = starlark.None
		if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name?", &x); err != nil {
			return nil, err
		}
		name := ""
		switch v := x.(type) {
		case starlark.NoneType:
		case starlark.String:
			name = string(v)
		case *starlark.Builtin:
			name = v.Name()
		default:
			name = v.Type() // help(ug) documents unit groups
		}
		if err := docRun(&DocOptions{IO: stdio, Name: name}); err != nil {
			return nil, err
		}
		return starlark.None, nil
	}
	return starlark.StringDict{
		"exit": starlark.NewBuiltin("exit", leave),
		"quit": starlark.NewBuiltin("quit", leave),
		"help": starlark.NewBuiltin("help", help),
	}
}

type replOutput struct{ w io.Writer }

func (o *replOutput) Line(source, stream, text string) {
	if source == "" {
		fmt.Fprintln(o.w, text)
		return
	}
	fmt.Fprintf(o.w, "%s | %s\n", source, text)
}
func (o *replOutput) Note(text string) { fmt.Fprintf(o.w, "· %s\n", text) }

// Status is not shown at the prompt: its notes say what was done.
func (o *replOutput) Status(string) {}

// newChunkReader reads one compound statement at a time: with readline on
// a terminal, from plain lines otherwise (scripts, tests). It returns
// io.EOF at the end of input: Ctrl-D on an empty line.
func newChunkReader(opts *ReplOptions, store *state.Store, s *lang.Interpreter) (func() (*syntax.File, error), func(), error) {
	if !opts.Interactive {
		br := bufio.NewReader(opts.In)
		eof := false
		return func() (*syntax.File, error) {
			if eof {
				return nil, io.EOF
			}
			f, err := lang.FileOptions.ParseCompoundStmt("<stdin>", func() ([]byte, error) {
				line, err := br.ReadString('\n')
				if err == io.EOF {
					eof = true
					if line == "" {
						return nil, io.EOF
					}
					return []byte(line + "\n"), nil
				}
				return []byte(line), err
			})
			if err != nil && eof {
				return nil, io.EOF
			}
			return f, err
		}, func() {}, nil
	}
	history := filepath.Join(store.Dir(), "repl_history")
	// History holds what was typed, which may be sensitive: private, as
	// the state is, before readline first writes to it.
	if f, err := os.OpenFile(history, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		f.Close()
	}
	os.Chmod(history, 0o600)
	rl, err := readline.NewEx(&readline.Config{
		Prompt:          ">>> ",
		HistoryFile:     history,
		AutoComplete:    &completer{s: s},
		InterruptPrompt: "^C",
		EOFPrompt:       "",
	})
	if err != nil {
		return nil, nil, err
	}
	return func() (*syntax.File, error) {
		rl.SetPrompt(">>> ")
		var ended error
		f, err := lang.FileOptions.ParseCompoundStmt("<stdin>", func() ([]byte, error) {
			line, err := rl.Readline()
			rl.SetPrompt("... ")
			if err != nil {
				ended = err // the parser would wrap it into a syntax error
				return nil, err
			}
			return []byte(line + "\n"), nil
		})
		if ended != nil {
			return nil, ended
		}
		return f, err
	}, func() { rl.Close() }, nil
}

// completer completes global names, and attributes after a dot.
type completer struct{ s *lang.Interpreter }

func (c *completer) Do(line []rune, pos int) ([][]rune, int) {
	word, matches := completeWord(c.s.Globals, string(line[:pos]))
	typed := len(word)
	if i := strings.LastIndexByte(word, '.'); i >= 0 {
		typed = len(word) - i - 1
	}
	out := make([][]rune, len(matches))
	for i, m := range matches {
		out[i] = []rune(m[typed:])
	}
	return out, typed
}

// completeWord completes the name or attribute that text ends with: the
// word it found (a name, or obj.prefix), and the names or attributes it
// may be, sorted.
func completeWord(globals starlark.StringDict, text string) (string, []string) {
	line := []rune(text)
	start := len(line)
	for start > 0 && isIdentRune(line[start-1]) {
		start--
	}
	word := string(line[start:])
	var matches []string
	if i := strings.LastIndexByte(word, '.'); i >= 0 {
		obj, prefix := word[:i], word[i+1:]
		if v, ok := globals[obj]; ok {
			if h, ok := v.(starlark.HasAttrs); ok {
				for _, a := range h.AttrNames() {
					if strings.HasPrefix(a, prefix) {
						matches = append(matches, a)
					}
				}
			}
		}
	} else {
		for name := range globals {
			if strings.HasPrefix(name, word) {
				matches = append(matches, name)
			}
		}
		for name := range starlark.Universe {
			if strings.HasPrefix(name, word) {
				matches = append(matches, name)
			}
		}
	}
	sort.Strings(matches)
	return word, slices.Compact(matches)
}

func isIdentRune(r rune) bool {
	return r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}
