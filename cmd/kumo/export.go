package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/builtins/all"
	"github.com/kumo-dev/kumo/export"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/runner"
	"github.com/kumo-dev/kumo/session"
	"github.com/kumo-dev/kumo/state"
)

// ExportOptions are the inputs of `kumo export`.
type ExportOptions struct {
	IO
	Store  func() (*state.Store, error)
	Run    string
	Format string
	Output string
}

// exportFormats are the formats kumo export writes, by name.
var exportFormats = []string{"ipynb", "md", "html"}

func newCmdExport(f *factory, runF func(*ExportOptions) error) *cobra.Command {
	opts := &ExportOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "export [RUN]",
		Short: "Write a run as an executed notebook: ipynb, Markdown or HTML",
		Long: `Write the record of a run: the recipe's cells, prose as Markdown and
code with what each printed when it last ran live (each node's output
apart), its status, start, duration and error, numbered in the order
the cells ran; and the run's recipe, parameters, providers and kumo
version. Secrets are masked, as everywhere kumo writes.

ipynb is Jupyter's nbformat 4.5 with papermill's cell metadata, so
Jupyter, nbconvert and papermill's readers open it. html uses nbconvert
when it is installed, else kumo's own page. RUN defaults to the only
run of the state. kumo run --export FILE writes the same as the run goes.`,
		Example: `  kumo export lab -o lab.ipynb
  kumo export lab --format md > lab.md
  kumo export --format html -o lab.html`,
		Args: argsUsage(cobra.MaximumNArgs(1)),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Run = args[0]
			}
			opts.Store = f.locator().OpenExisting
			if opts.Format == "" {
				opts.Format = formatOf(opts.Output)
			}
			if runF != nil {
				return runF(opts)
			}
			return exportRun(opts)
		},
	}
	cmd.Flags().StringVar(&opts.Format, "format", "", "ipynb, md or html (default: from -o's extension, else ipynb)")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "write to this file (default: standard output)")
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(exportFormats, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// formatOf is the export format a file name asks for: ipynb unless its
// extension names another.
func formatOf(file string) string {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".md", ".markdown":
		return "md"
	case ".html", ".htm":
		return "html"
	}
	return "ipynb"
}

func checkFormat(format string) error {
	for _, f := range exportFormats {
		if f == format {
			return nil
		}
	}
	return usageError{error: fmt.Errorf("unknown export format %q: give one of %s", format, strings.Join(exportFormats, ", "))}
}

// checkExportFile refuses, before anything runs, a record that could not
// be written: an unknown extension or a missing folder.
func checkExportFile(file string) error {
	ext := strings.ToLower(filepath.Ext(file))
	if ext != ".ipynb" && formatOf(file) == "ipynb" {
		return usageError{error: fmt.Errorf("--export %s: name the file .ipynb, .md or .html, which says its format", file)}
	}
	if st, err := os.Stat(filepath.Dir(file)); err != nil || !st.IsDir() {
		return usageError{error: fmt.Errorf("--export %s: no folder %s to write it in", file, filepath.Dir(file))}
	}
	return nil
}

func exportRun(opts *ExportOptions) error {
	if err := checkFormat(opts.Format); err != nil {
		return err
	}
	store, err := opts.Store()
	if err != nil {
		return err
	}
	defer store.Close()
	name, err := session.PickRun(store, opts.Run)
	if err != nil {
		return err
	}
	run, _, err := store.GetRun(name)
	if err != nil {
		return err
	}
	if run.Recipe == "" {
		return usageError{error: fmt.Errorf("run %q has no recipe (a REPL session's nodes): there is nothing to export", name)}
	}
	recipe, err := lang.ReadRecipe(run.Recipe, all.Globals().Has)
	if err != nil {
		return fmt.Errorf("reading the run's recipe, whose cells the export shows: %w", err)
	}
	nb, err := export.FromState(store, recipe, name, version())
	if err != nil {
		return err
	}
	data, err := renderNotebook(nb, opts.Format)
	if err != nil {
		return err
	}
	if opts.Output == "" {
		_, err = opts.Out.Write(data)
		return err
	}
	return writeAtomic(opts.Output, data)
}

func renderNotebook(nb *export.Notebook, format string) ([]byte, error) {
	switch format {
	case "md":
		return nb.Markdown(), nil
	case "html":
		// KUMO_NBCONVERT=off asks for kumo's own page where nbconvert is.
		if nbconvert, err := exec.LookPath("jupyter-nbconvert"); err == nil && os.Getenv("KUMO_NBCONVERT") != "off" {
			if out, err := nbconvertHTML(nbconvert, nb); err == nil {
				return out, nil
			}
		}
		return nb.HTML()
	}
	return nb.IPYNB()
}

// nbconvertHTML renders through Jupyter's own converter.
func nbconvertHTML(nbconvert string, nb *export.Notebook) ([]byte, error) {
	src, err := nb.IPYNB()
	if err != nil {
		return nil, err
	}
	var out, errb bytes.Buffer
	cmd := exec.Command(nbconvert, "--to", "html", "--stdin", "--stdout", "--log-level=ERROR")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(src), &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("nbconvert: %v: %s", err, errb.String())
	}
	return out.Bytes(), nil
}

// writeAtomic replaces file with data in one step: a reader (or a crash)
// sees the old record or the new one, never half of one.
func writeAtomic(file string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

// liveExport writes the run's record to a file as the run goes: after
// each cell starts and finishes, as papermill does, so that a run that
// is killed still leaves the record of what it did up to then.
type liveExport struct {
	runnerEvents
	store  *state.Store
	recipe *lang.Recipe
	run    string
	file   string
	format string
	failed bool // said once: the run goes on without its record
}

// runnerEvents is the runner's event interface, named for embedding.
type runnerEvents = interface {
	CellStarted(c *lang.Cell, s runner.CellStart)
	Output(c *lang.Cell, source, stream, text string)
	Status(c *lang.Cell, text string)
	CellFinished(c *lang.Cell, r runner.CellResult)
	Notice(text string)
}

func (e *liveExport) write() {
	nb, err := export.FromState(e.store, e.recipe, e.run, version())
	var data []byte
	if err == nil {
		data, err = renderNotebook(nb, e.format)
	}
	if err == nil {
		err = writeAtomic(e.file, data)
	}
	if err != nil && !e.failed {
		e.failed = true
		e.runnerEvents.Notice(fmt.Sprintf("could not write the record to %s: %v (the run goes on)", e.file, err))
	}
}

func (e *liveExport) CellStarted(c *lang.Cell, s runner.CellStart) {
	e.runnerEvents.CellStarted(c, s)
	if !s.Replay {
		e.write()
	}
}

func (e *liveExport) CellFinished(c *lang.Cell, r runner.CellResult) {
	e.runnerEvents.CellFinished(c, r)
	if r.Status != runner.Replayed && r.Status != runner.Skipped {
		e.write()
	}
}
