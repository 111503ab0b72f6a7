package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins/all"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/fleet"
	"github.com/kumo-dev/kumo/jupyter"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/runner"
	"github.com/kumo-dev/kumo/session"
	"github.com/kumo-dev/kumo/state"
)

// KernelOptions are the inputs of `kumo kernel`.
type KernelOptions struct {
	IO
	ConnectionFile string
	Store          func(file string) func() (*state.Store, error)
}

func newCmdKernel(f *factory, runF func(*KernelOptions) error) *cobra.Command {
	opts := &KernelOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "kernel -f CONNECTION_FILE",
		Short: "Be a Jupyter kernel: each notebook cell a recipe cell, replayed when done",
		Long: `kumo kernel speaks Jupyter's messaging protocol, so that a notebook in
JupyterLab, Jupyter Notebook, jupyter console, nbconvert or nbclient
runs with kumo behind every cell. A notebook is a recipe: the kernel
keeps one run per notebook, named after it, with its state beside it as
for .star files; each cell is a recipe cell, replayed when it and what
it reads are unchanged (its recorded output shown, nothing touched) and
run live otherwise, saying why. An interrupt stops the running builtin
cleanly; secret() asks the notebook, without showing what is typed.

Jupyter starts it: install the kernelspec once with kumo kernel install.`,
		Example: `  kumo kernel install --user
  jupyter console --kernel kumo
  jupyter nbconvert --to notebook --execute class.ipynb`,
		Args: argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.ConnectionFile == "" {
				return usageError{fmt.Errorf("kumo kernel: give the connection file Jupyter writes (-f FILE); to make Jupyter start kumo, run kumo kernel install"), cmd}
			}
			opts.Store = f.locator().StoreFor
			if runF != nil {
				return runF(opts)
			}
			return kernelRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.ConnectionFile, "connection-file", "f", "", "the kernel's connection file (Jupyter gives it)")
	cmd.AddCommand(newCmdKernelInstall(f, nil))
	return cmd
}

// KernelInstallOptions are the inputs of `kumo kernel install`.
type KernelInstallOptions struct {
	IO
	User, SysPrefix bool
	Prefix, Name    string
}

func newCmdKernelInstall(f *factory, runF func(*KernelInstallOptions) error) *cobra.Command {
	opts := &KernelInstallOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "install [--user | --sys-prefix | --prefix DIR]",
		Short: "Install the kumo kernelspec, so that Jupyter offers kumo notebooks",
		Long: `install writes the kernelspec Jupyter starts kumo's kernel from (kernel.json,
running this kumo by its absolute path, and kumo's logo): for every user
(/usr/local/share/jupyter/kernels, needs root), for you (--user:
$JUPYTER_DATA_DIR or ~/.local/share/jupyter/kernels), for the Python
environment python3 runs in (--sys-prefix), or under --prefix DIR.`,
		Args: argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := 0
			for _, b := range []bool{opts.User, opts.SysPrefix, opts.Prefix != ""} {
				if b {
					n++
				}
			}
			if n > 1 {
				return usageError{errors.New("kumo kernel install: give one of --user, --sys-prefix, --prefix"), cmd}
			}
			if err := session.ValidRunName(opts.Name); err != nil {
				return usageError{fmt.Errorf("--name: %v", err), cmd}
			}
			if runF != nil {
				return runF(opts)
			}
			return kernelInstallRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.User, "user", false, "install for this user only")
	cmd.Flags().BoolVar(&opts.SysPrefix, "sys-prefix", false, "install into the Python environment python3 runs in (a venv, conda)")
	cmd.Flags().StringVar(&opts.Prefix, "prefix", "", "install under DIR/share/jupyter/kernels")
	cmd.Flags().StringVar(&opts.Name, "name", "kumo", "the kernel's name (jupyter --kernel NAME)")
	return cmd
}

func kernelInstallRun(opts *KernelInstallOptions) error {
	self, err := kumoPath()
	if err != nil {
		return err
	}
	var base string
	switch {
	case opts.User:
		base = os.Getenv("JUPYTER_DATA_DIR")
		if base == "" {
			data := os.Getenv("XDG_DATA_HOME")
			if data == "" {
				home, err := os.UserHomeDir()
				if err != nil {
					return err
				}
				data = filepath.Join(home, ".local", "share")
			}
			base = filepath.Join(data, "jupyter")
		}
	case opts.SysPrefix:
		out, err := exec.Command("python3", "-c", "import sys; print(sys.prefix)").Output()
		if err != nil {
			return fmt.Errorf("--sys-prefix asks python3 for its environment's prefix, and that failed (%v): give --prefix DIR or --user", err)
		}
		base = filepath.Join(strings.TrimSpace(string(out)), "share", "jupyter")
	case opts.Prefix != "":
		base = filepath.Join(opts.Prefix, "share", "jupyter")
	default:
		base = "/usr/local/share/jupyter"
	}
	dir := filepath.Join(base, "kernels", opts.Name)
	spec := jupyter.Spec{
		Argv:        []string{self, "kernel", "-f", "{connection_file}"},
		DisplayName: "kumo", Language: "starlark", InterruptMode: "message",
		Env: map[string]string{}, Metadata: map[string]any{"debugger": false},
	}
	if err := jupyter.InstallSpec(dir, spec); err != nil {
		if errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("installing the kernelspec in %s: %v: run as root, or give --user", dir, err)
		}
		return err
	}
	fmt.Fprintf(opts.Out, "installed kernelspec %s in %s (jupyter kernelspec list shows it)\n", opts.Name, dir)
	return nil
}

// kumoPath is this kumo as the user started it: by the path they gave,
// or as found in their PATH (a link kept as a link, so that the kernel
// follows an upgrade), else the executable itself.
func kumoPath() (string, error) {
	arg := os.Args[0]
	switch {
	case filepath.IsAbs(arg):
		return arg, nil
	case strings.Contains(arg, "/"):
		return filepath.Abs(arg)
	}
	if p, err := exec.LookPath(arg); err == nil {
		return filepath.Abs(p)
	}
	return os.Executable()
}

func kernelRun(ctx context.Context, opts *KernelOptions) error {
	conn, err := jupyter.ReadConnection(opts.ConnectionFile)
	if err != nil {
		return starkit.Inputf("kumo kernel: %v", err)
	}
	dir, err := os.Getwd()
	if err != nil {
		return err
	}
	nk := &notebookKernel{opts: opts, dir: dir, globals: all.Globals()}
	k := jupyter.NewKernel(conn, nk)
	k.Log = opts.Err
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	// A Ctrl-C meant for a console in the same terminal interrupts the
	// running cell, as an interrupt request does; SIGTERM ends the kernel.
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)
	go func() {
		for s := range signals {
			if s == syscall.SIGINT {
				k.Interrupt()
			} else {
				k.Stop()
			}
		}
	}()
	// The kernel ends with the process that started it (JPY_PARENT_PID),
	// as ipykernel's parent poller: its lock must not outlive the notebook.
	if parent, err := strconv.Atoi(os.Getenv("JPY_PARENT_PID")); err == nil && parent > 1 {
		go func() {
			for range time.Tick(time.Second) {
				if os.Getppid() != parent {
					k.Stop()
					return
				}
			}
		}()
	}
	return k.Serve(ctx)
}

// notebookKernel is kumo as a Jupyter kernel: a notebook's cells run
// one at a time through the runner, as the cells of a recipe.
type notebookKernel struct {
	opts    *KernelOptions
	dir     string // where the kernel runs: the notebook's folder
	globals starlark.StringDict

	path    string            // the notebook, "" if the kernel could not tell
	markers map[string]string // the notebook's code cells' markers, by source
	name    string            // its run
	store   *state.Store
	held    *session.Held
	run     *runner.Interactive
	prev    state.Run
	cells   []kernelCell // in the order they were first run
	noted   bool

	mu       sync.Mutex
	out      *jupyter.Output // the running execution's
	ctx      context.Context
	display  string // its status display
	shown    time.Time
	showing  bool   // the display was made
	finished bool   // the cell has ended
	status   string // what its display shows first
	started  time.Time
}

// kernelCell is one notebook cell the kernel has run: its code, and the
// id JupyterLab sends with it.
type kernelCell struct {
	id, code string
}

func (k *notebookKernel) Info() jupyter.Info {
	return jupyter.Info{
		Implementation: "kumo", ImplementationVersion: version(),
		Banner: "kumo " + version() + " — each cell is a recipe cell: replayed when done, live when it or what it reads changed",
		Language: jupyter.LanguageInfo{Name: "starlark", Version: version(), Mimetype: "text/x-starlark", FileExtension: ".star",
			PygmentsLexer: "python", CodemirrorMode: "python"},
		HelpLinks: []jupyter.HelpLink{{Text: "kumo builtins (kumo doc)", URL: "https://github.com/kumo-dev/kumo/blob/main/docs/builtins.md"}},
	}
}

func (k *notebookKernel) Execute(ctx context.Context, req jupyter.ExecuteRequest, out *jupyter.Output) jupyter.ExecuteResult {
	switch strings.TrimSpace(req.Code) {
	case "":
		return jupyter.ExecuteResult{}
	case "exit", "exit()", "quit", "quit()":
		// A console's way out, as IPython's kernel answers it: the
		// console leaves, and shuts the kernel down.
		return jupyter.ExecuteResult{Payload: []map[string]any{{"source": "ask_exit", "keepkernel": false}}}
	}
	k.mu.Lock()
	k.out, k.ctx, k.display, k.status, k.showing = out, ctx, "kumo-"+strconv.Itoa(req.Count)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36), "", false
	k.finished = false
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		k.out, k.ctx = nil, nil
		k.mu.Unlock()
	}()
	if err := k.open(req.Code); err != nil {
		return jupyter.ExecuteResult{Err: kernelError(err, nil, -1)}
	}
	if !k.noted && k.path == "" {
		k.noted = true
		out.Stream("stderr", fmt.Sprintf("kumo: this kernel could not tell which notebook it runs (no JPY_SESSION_NAME, and no notebook in %s holds this cell), so its run is %q, its state in %s\n", k.dir, k.name, k.store.Path))
	}
	id, _ := req.Metadata["cellId"].(string)
	idx, undo := k.place(id, req.Code)
	rec, err := k.recipe()
	if err != nil {
		e := kernelError(err, k.lines(), idx)
		undo()
		return jupyter.ExecuteResult{Err: e}
	}
	if rec.IsParams(rec.Cells[idx]) {
		k.overrides(rec)
	}
	res := k.run.Exec(ctx, rec, idx)
	if res.Status == runner.Failed {
		return jupyter.ExecuteResult{Err: kernelError(res.Err, k.lines(), idx), Metadata: map[string]any{"kumo": map[string]any{"status": "failed", "reason": res.Reason}}}
	}
	result := jupyter.ExecuteResult{Metadata: map[string]any{"kumo": map[string]any{"status": string(res.Status), "reason": res.Reason}}}
	if v, ok := k.run.Interpreter().Globals["_"]; ok && v != starlark.None {
		result.Data = map[string]any{"text/plain": k.held.Env.Secrets.Mask(v.String())}
	}
	return result
}

// open finds the notebook, opens its state and takes its run's lock,
// on the first execution (and again after one that failed to).
func (k *notebookKernel) open(code string) error {
	if k.run != nil {
		return nil
	}
	k.path = k.findNotebook(code)
	file, name := k.path, "kernel"
	if file != "" {
		name = runNameOf(file)
		if data, err := os.ReadFile(file); err == nil {
			k.markers, _ = lang.NotebookCells(data)
		}
	} else {
		file = filepath.Join(k.dir, name+".ipynb")
	}
	store, err := k.opts.Store(file)()
	if err != nil {
		return err
	}
	held, err := session.Hold(store, name)
	if err != nil {
		store.Close()
		return err
	}
	prev, _, err := store.GetRun(name)
	if err != nil {
		held.Release()
		store.Close()
		return err
	}
	held.Env.Ask = k.ask
	session := &lang.Recipe{Path: file, Dir: filepath.Dir(file)}
	run, err := runner.NewInteractive(runner.Options{Recipe: session, Run: name, Remember: prev.Overrides,
		Builtins: k.globals, Env: held.Env, Events: k, World: fleet.New(held.Env.Store, held.Env.Run, held.Env.Providers).Missing})
	if err != nil {
		held.Release()
		store.Close()
		return err
	}
	run.Interpreter().KeepValue = true
	k.name, k.store, k.held, k.run, k.prev = name, store, held, run, prev
	return nil
}

// findNotebook is the notebook the kernel runs: the one Jupyter's server
// names (JPY_SESSION_NAME), else the notebook in the kernel's folder
// that holds this code (nbconvert, nbclient and papermill start a kernel
// in the notebook's folder), else "".
func (k *notebookKernel) findNotebook(code string) string {
	if s := os.Getenv("JPY_SESSION_NAME"); s != "" && lang.IsNotebook(s) {
		for _, p := range []string{s, filepath.Join(k.dir, filepath.Base(s))} {
			if abs, err := filepath.Abs(p); err == nil {
				if _, err := os.Stat(abs); err == nil {
					return abs
				}
			}
		}
	}
	found, _ := filepath.Glob(filepath.Join(k.dir, "*.ipynb"))
	var holding, recorded []string
	for _, path := range found {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		cells, err := lang.NotebookCells(data)
		if err != nil {
			continue
		}
		if _, ok := cells[code]; ok {
			holding = append(holding, path)
			if k.isRecipeOfARun(path) {
				recorded = append(recorded, path)
			}
		}
	}
	switch {
	case len(holding) == 1:
		return holding[0]
	case len(recorded) == 1:
		// nbconvert's output beside its input holds the same cells: the
		// notebook a run was made of is the one.
		return recorded[0]
	}
	return ""
}

// isRecipeOfARun reports whether a run of the state beside path was
// made of that notebook.
func (k *notebookKernel) isRecipeOfARun(path string) bool {
	store, err := k.opts.Store(path)()
	if err != nil {
		return false
	}
	defer store.Close()
	r, ok, _ := store.GetRun(runNameOf(path))
	return ok && r.Recipe == path
}

// runNameOf is the run a notebook's kernel keeps: its file's name, made
// a valid run name.
func runNameOf(path string) string {
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	name = regexp.MustCompile(`[^A-Za-z0-9._-]+`).ReplaceAllString(name, "-")
	if session.ValidRunName(name) != nil {
		return "notebook"
	}
	return name
}

// place finds the cell this code belongs to: the one with JupyterLab's
// cell id, else one with the same code; a new one goes last. undo puts
// the cells back as they were (the code did not parse).
func (k *notebookKernel) place(id, code string) (idx int, undo func()) {
	for i, c := range k.cells {
		if (id != "" && c.id == id) || (id == "" && c.code == code) {
			old := c
			k.cells[i].code = code
			return i, func() { k.cells[i] = old }
		}
	}
	k.cells = append(k.cells, kernelCell{id: id, code: code})
	n := len(k.cells)
	return n - 1, func() { k.cells = k.cells[:n-1] }
}

// recipe is the cells run so far as a recipe: each its own cell, with
// the marker the notebook gives it (its title and tags) or its own.
func (k *notebookKernel) recipe() (*lang.Recipe, error) {
	var b strings.Builder
	for i, c := range k.cells {
		if i > 0 {
			b.WriteString("\n")
		}
		code := strings.TrimRight(c.code, "\n")
		first, _, _ := strings.Cut(code, "\n")
		if !lang.IsCellMarker(first) {
			marker := k.markers[c.code]
			if marker == "" {
				marker = "# %%"
			}
			b.WriteString(marker + "\n")
		}
		for j, line := range strings.Split(code, "\n") {
			if j > 0 && lang.IsCellMarker(line) {
				return nil, starkit.Inputf("a notebook cell is one recipe cell: this one has a %q line inside it; split it into two cells there", strings.TrimSpace(line))
			}
		}
		b.WriteString(code + "\n")
	}
	// Names the session holds stay known, as in any notebook, though the
	// cell that defined them was edited since.
	known := func(name string) bool {
		_, ok := k.run.Interpreter().Globals[name]
		return ok || k.globals.Has(name)
	}
	return lang.ParseRecipe(k.recipePath(), b.String(), known)
}

func (k *notebookKernel) recipePath() string {
	if k.path != "" {
		return k.path
	}
	return filepath.Join(k.dir, k.name+".ipynb")
}

// lines is, per cell, its first line in the recipe text (for errors).
func (k *notebookKernel) lines() []int {
	var out []int
	line := 1
	for _, c := range k.cells {
		code := strings.TrimRight(c.code, "\n")
		first, _, _ := strings.Cut(code, "\n")
		if !lang.IsCellMarker(first) {
			line++ // the marker the kernel adds
		}
		out = append(out, line)
		line += strings.Count(code, "\n") + 2
	}
	return out
}

// overrides gives the parameters cell the -p values the run remembers
// (from kumo run NOTEBOOK -p ...), read against this cell's defaults.
func (k *notebookKernel) overrides(rec *lang.Recipe) {
	defaults, _ := rec.Defaults(k.globals)
	values := map[string]starlark.Value{}
	for n, raw := range k.prev.Overrides {
		if v, err := lang.Override(n, raw, defaults[n]); err == nil {
			values[n] = v
		}
	}
	k.run.SetOverrides(values)
}

func (k *notebookKernel) Shutdown(restart bool) {
	if k.run != nil {
		k.run.Close(false)
	}
	if k.held != nil {
		k.held.Release()
	}
	if k.store != nil {
		k.store.Close()
	}
	k.run, k.held, k.store, k.cells = nil, nil, nil, nil
}

// ask is secret()'s question to the notebook (a password prompt).
func (k *notebookKernel) ask(prompt string, secret bool) (string, error) {
	k.mu.Lock()
	out, ctx := k.out, k.ctx
	k.mu.Unlock()
	if out == nil {
		return "", errors.New("no cell is running")
	}
	return out.Input(ctx, prompt, secret)
}

// The runner's events: what a cell prints goes out as streams, each
// node's line as "node | text" (as kumo run prints it), kumo's notes as
// "· text"; a display says whether the cell replays or runs live and
// why, and shows the status line of long work as it changes.

// showAfter is how long a live cell runs before its display shows
// that it runs and why: a quick cell gets its line when it ends (and a
// failing one none: its error says enough).
const showAfter = time.Second

func (k *notebookKernel) CellStarted(c *lang.Cell, start runner.CellStart) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.started, k.shown = time.Now(), time.Time{}
	if start.Replay {
		k.status = "↺ replayed: unchanged, nothing touched"
		return
	}
	k.status = "▶ runs live (" + start.Reason + ")"
	id := k.display
	time.AfterFunc(showAfter, func() { k.showStatus(id, "") })
}

// showStatus shows the running cell's display: why it runs, and the
// status line of its long work (text, "" for none).
func (k *notebookKernel) showStatus(id, text string) {
	k.mu.Lock()
	if k.out == nil || k.display != id || k.finished {
		k.mu.Unlock()
		return
	}
	out, shown, showing := k.out, k.status, k.showing
	if text != "" {
		shown += "\n" + text + " (" + time.Since(k.started).Round(time.Second).String() + ")"
	}
	k.showing = true
	k.mu.Unlock()
	if showing {
		out.UpdateDisplay(map[string]any{"text/plain": shown}, id)
	} else {
		out.Display(map[string]any{"text/plain": shown}, id)
	}
}

func (k *notebookKernel) Output(c *lang.Cell, source, stream, text string) {
	k.mu.Lock()
	out := k.out
	k.mu.Unlock()
	if out == nil {
		return
	}
	line := state.OutputLine{Source: source, Stream: state.Stream(stream), Text: text}
	name := "stdout"
	if line.Stream == state.StreamStderr {
		name = "stderr"
	}
	out.Stream(name, line.Display()+"\n")
}

func (k *notebookKernel) Status(c *lang.Cell, text string) {
	k.mu.Lock()
	id := k.display
	due := time.Since(k.shown) >= 250*time.Millisecond || text == ""
	if due {
		k.shown = time.Now()
	}
	k.mu.Unlock()
	if due {
		k.showStatus(id, text)
	}
}

func (k *notebookKernel) CellFinished(c *lang.Cell, r runner.CellResult) {
	k.mu.Lock()
	out, id, showing := k.out, k.display, k.showing
	k.finished = true
	k.mu.Unlock()
	if out == nil {
		return
	}
	if r.Status == runner.Replayed {
		for _, l := range r.Output {
			name := "stdout"
			if l.Stream == state.StreamStderr {
				name = "stderr"
			}
			out.Stream(name, l.Display()+"\n")
		}
	}
	var summary string
	switch r.Status {
	case runner.Replayed:
		summary = "↺ replayed: unchanged, nothing touched (recorded output)"
	case runner.Ran:
		summary = fmt.Sprintf("✔ ran live (%s) in %s", r.Reason, r.Duration.Round(time.Millisecond))
	case runner.Failed:
		if !showing {
			return
		}
		summary = fmt.Sprintf("✘ failed after %s", r.Duration.Round(time.Millisecond))
	default:
		return
	}
	if showing {
		out.UpdateDisplay(map[string]any{"text/plain": summary}, id)
	} else {
		out.Display(map[string]any{"text/plain": summary}, id)
	}
}

func (k *notebookKernel) Notice(text string) {
	k.mu.Lock()
	out := k.out
	k.mu.Unlock()
	if out != nil {
		out.Stream("stderr", "kumo: "+text+"\n")
	}
}

// kernelError is err as Jupyter shows it: a name, its first line, and
// the recipe-level traceback, with positions read as cells of the
// notebook ("cell 3, line 2") rather than lines of the recipe text.
func kernelError(err error, cellLines []int, current int) *jupyter.ErrorValue {
	text := lang.FormatError(err)
	if cellLines != nil {
		text = cellPositions(text, cellLines, current)
	}
	name := "Error"
	var divergence *runner.DivergenceError
	var locked *state.LockedError
	switch {
	case errors.Is(err, context.Canceled) || strings.Contains(text, "interrupted"):
		name = "Interrupted"
	case errors.As(err, &locked):
		name = "RunInUse"
	case errors.As(err, &divergence):
		name = "ReplayDiverged"
	case starkit.IsInputError(err):
		name = "InputError"
	}
	first, _, _ := strings.Cut(text, "\n")
	return &jupyter.ErrorValue{Name: name, Value: first, Traceback: strings.Split(strings.TrimRight(text, "\n"), "\n")}
}

var recipePosition = regexp.MustCompile(`[^\s:]+\.ipynb:(\d+):(\d+)`)

// cellPositions rewrites FILE.ipynb:LINE:COL as a line of the running
// cell ("line 2:5"), or of another cell the kernel ran ("cell 3 of this
// session, line 2:5").
func cellPositions(text string, cellLines []int, current int) string {
	return recipePosition.ReplaceAllStringFunc(text, func(m string) string {
		sub := recipePosition.FindStringSubmatch(m)
		line, _ := strconv.Atoi(sub[1])
		cell := -1
		for i, start := range cellLines {
			if line >= start {
				cell = i
			}
		}
		if cell < 0 {
			return m
		}
		if cell == current {
			return fmt.Sprintf("line %d:%s", line-cellLines[cell]+1, sub[2])
		}
		return fmt.Sprintf("cell %d of this kernel, line %d:%s", cell+1, line-cellLines[cell]+1, sub[2])
	})
}

// Complete completes names and attributes, as the REPL does.
func (k *notebookKernel) Complete(code string, cursor int) jupyter.Completion {
	globals := starlark.StringDict{}
	for n, v := range k.globals {
		globals[n] = v
	}
	if k.run != nil {
		for n, v := range k.run.Interpreter().Globals {
			globals[n] = v
		}
	}
	word, matches := completeWord(globals, code[:cursor])
	start := cursor - len(word)
	if i := strings.LastIndexByte(word, '.'); i >= 0 {
		start += i + 1
	}
	return jupyter.Completion{Matches: matches, Start: start, End: cursor}
}

// Inspect is kumo doc of the name at the cursor.
func (k *notebookKernel) Inspect(code string, cursor, detail int) (string, bool) {
	start, end := cursor, cursor
	for start > 0 && isIdentRune(rune(code[start-1])) {
		start--
	}
	for end < len(code) && isIdentRune(rune(code[end])) && code[end] != '.' {
		end++
	}
	word := code[start:end]
	if word == "" {
		return "", false
	}
	names := []string{word}
	if obj, attr, ok := strings.Cut(word, "."); ok {
		names = []string{attr}
		if k.run != nil {
			if v, ok := k.run.Interpreter().Globals[obj]; ok {
				names = append([]string{docTypeName(v) + "." + attr}, names...)
			}
		}
	}
	for _, name := range names {
		var buf bytes.Buffer
		if err := docRun(&DocOptions{IO: IO{In: nil, Out: &buf, Err: io.Discard}, Name: name}); err == nil && buf.Len() > 0 {
			return buf.String(), true
		}
	}
	return "", false
}

// IsComplete says whether a console should run the code on Enter.
func (k *notebookKernel) IsComplete(code string) (string, string) {
	return codeCompleteness(code)
}

// docTypeName is the name kumo doc gives a value's type: UnitGroup for
// a unit_group.
func docTypeName(v starlark.Value) string {
	var b strings.Builder
	for _, part := range strings.Split(v.Type(), "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// codeCompleteness says whether code is a whole cell: "complete",
// "incomplete" with the indent of the next line (an open bracket or
// block, a line ending in ':' or '\\'), or "invalid".
func codeCompleteness(code string) (string, string) {
	lines := strings.Split(code, "\n")
	// The last line with something on it, and whether a blank line (as
	// a console leaves after a block) follows it.
	last, blankAfter := "", false
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.TrimSpace(lines[i]) != "" {
			last, blankAfter = strings.TrimRight(lines[i], " \t"), i < len(lines)-1
			break
		}
	}
	indent := last[:len(last)-len(strings.TrimLeft(last, " \t"))]
	switch {
	case last == "":
		return "complete", ""
	case strings.HasSuffix(last, ":"):
		return "incomplete", indent + "    "
	case strings.HasSuffix(last, "\\"):
		return "incomplete", indent
	}
	if _, err := lang.FileOptions.Parse("<cell>", code+"\n", 0); err != nil {
		if msg := err.Error(); strings.Contains(msg, "got end of file") || strings.Contains(msg, "unexpected EOF") {
			return "incomplete", indent
		}
		return "invalid", ""
	}
	// A block is complete once a blank line ends it, as in Python's console.
	if indent != "" && !blankAfter {
		return "incomplete", indent
	}
	return "complete", ""
}
