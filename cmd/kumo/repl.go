package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/chzyer/readline"
	"github.com/spf13/cobra"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/all"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/lang/runner"
	"github.com/kumo-dev/kumo/lang/state"
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
recorded in the run, so kumo status shows them and kumo destroy removes them.
Line editing, history (kept beside the state) and Tab completion of names
and attributes are on when the prompt is a terminal.`,
		Args: argsUsage(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.File = args[0]
			}
			opts.Store = f.openStore
			opts.Interactive = isTerminal(f.In) && isTerminal(f.Out)
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
	if err := validRunName(name); err != nil {
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
	held, err := holdRun(store, name)
	if err != nil {
		return err
	}
	defer held.Release()
	if err := store.EnsureRun(name); err != nil {
		return err
	}
	env := held.Env

	var session *lang.Session
	if recipe != nil {
		r := runner.New(runner.Options{Recipe: recipe, Run: name, ReplayOnly: true, Builtins: globals, Env: env})
		sum, err := r.Run(context.Background())
		if err != nil {
			return fmt.Errorf("replaying %s: %w", opts.File, err)
		}
		session = r.Session()
		fmt.Fprintf(opts.Out, "kumo: replayed %d cell(s) of %s into run %q\n", len(sum.Cells), opts.File, name)
	} else {
		dir, _ := os.Getwd()
		session = lang.NewSession(dir, globals)
		env.Attach(session.Thread)
	}
	// At the prompt, builtins run live and are not journaled: there is no
	// cell to replay them into. Resources are recorded all the same.
	builtins.SetInterceptor(session.Thread, nil)
	env.Out = &replOutput{w: opts.Out}
	session.Thread.Print = func(_ *starlark.Thread, msg string) { fmt.Fprintln(opts.Out, env.Secrets.Mask(msg)) }

	read, closeReader, err := newChunkReader(opts, store, session)
	if err != nil {
		return err
	}
	defer closeReader()
	if opts.Interactive {
		fmt.Fprintf(opts.Out, "kumo repl — run %q. Tab completes, Ctrl-D quits. kumo doc NAME documents a builtin.\n", name)
	}
	for {
		f, err := read()
		if errors.Is(err, io.EOF) {
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
		v, err := session.ExecChunk(ctx, f)
		stop()
		if err != nil {
			fmt.Fprintln(opts.Err, env.Secrets.Mask(lang.FormatError(err)))
			continue
		}
		if v != nil && v != starlark.None {
			fmt.Fprintln(opts.Out, env.Secrets.Mask(v.String()))
		}
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

// newChunkReader reads one compound statement at a time: with readline on
// a terminal, from plain lines otherwise (scripts, tests).
func newChunkReader(opts *ReplOptions, store *state.Store, s *lang.Session) (func() (*syntax.File, error), func(), error) {
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
	rl, err := readline.NewEx(&readline.Config{
		Prompt:          ">>> ",
		HistoryFile:     filepath.Join(store.Dir(), "repl_history"),
		AutoComplete:    &completer{s: s},
		InterruptPrompt: "^C",
		EOFPrompt:       "",
	})
	if err != nil {
		return nil, nil, err
	}
	return func() (*syntax.File, error) {
		rl.SetPrompt(">>> ")
		return lang.FileOptions.ParseCompoundStmt("<stdin>", func() ([]byte, error) {
			line, err := rl.Readline()
			rl.SetPrompt("... ")
			if err != nil {
				return nil, err
			}
			return []byte(line + "\n"), nil
		})
	}, func() { rl.Close() }, nil
}

// completer completes global names, and attributes after a dot.
type completer struct{ s *lang.Session }

func (c *completer) Do(line []rune, pos int) ([][]rune, int) {
	start := pos
	for start > 0 && isIdentRune(line[start-1]) {
		start--
	}
	word := string(line[start:pos])
	var candidates []string
	if i := strings.LastIndexByte(word, '.'); i >= 0 {
		obj, prefix := word[:i], word[i+1:]
		if v, ok := c.s.Globals[obj]; ok {
			if h, ok := v.(starlark.HasAttrs); ok {
				for _, a := range h.AttrNames() {
					if strings.HasPrefix(a, prefix) {
						candidates = append(candidates, a[len(prefix):])
					}
				}
			}
		}
	} else {
		for name := range c.s.Globals {
			if strings.HasPrefix(name, word) {
				candidates = append(candidates, name[len(word):])
			}
		}
		for name := range starlark.Universe {
			if strings.HasPrefix(name, word) {
				candidates = append(candidates, name[len(word):])
			}
		}
	}
	sort.Strings(candidates)
	out := make([][]rune, len(candidates))
	for i, s := range candidates {
		out[i] = []rune(s)
	}
	if i := strings.LastIndexByte(word, '.'); i >= 0 {
		return out, len(word) - i - 1
	}
	return out, len(word)
}

func isIdentRune(r rune) bool {
	return r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}
