package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/lang"
)

// ConvertOptions are the inputs of `kumo convert`.
type ConvertOptions struct {
	IO
	File   string
	Output string // "" for FILE with the other extension, "-" for stdout
	Force  bool
}

func newCmdConvert(f *factory, runF func(*ConvertOptions) error) *cobra.Command {
	opts := &ConvertOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "convert FILE",
		Short: "Turn a recipe into a Jupyter notebook, or a notebook into a recipe",
		Long: `convert writes a .star recipe as a Jupyter notebook (.ipynb), or a notebook
as a recipe, in Jupytext's percent format: code cells are cells ("# %%"),
markdown and raw cells are prose in "# " comments, a cell's title and
tags ([parameters], [always], ...) are its metadata's "title" and
"tags", and the notebook's metadata is a "# ---" YAML header. A recipe
converted and back is the same file, byte for byte; a notebook keeps its
cells and metadata, but not its outputs (a run's record: kumo export
writes those). kumo runs notebooks as they are, too: kumo run class.ipynb.`,
		Example: `  kumo convert class.star            # writes class.ipynb
  kumo convert class.ipynb -o -      # the recipe text on stdout`,
		Args:              argsUsage(cobra.ExactArgs(1)),
		ValidArgsFunction: completeRecipeFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			if runF != nil {
				return runF(opts)
			}
			return convertRun(opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "where to write (default: FILE with the other extension; - for stdout)")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace the output file if it exists")
	return cmd
}

func convertRun(opts *ConvertOptions) error {
	toRecipe := lang.IsNotebook(opts.File)
	if !toRecipe && !strings.HasSuffix(opts.File, ".star") {
		return usageError{error: fmt.Errorf("kumo convert %s: give a .star recipe or an .ipynb notebook", opts.File)}
	}
	src, err := os.ReadFile(opts.File)
	if err != nil {
		return starkit.Inputf("kumo convert: %v", err)
	}
	var out []byte
	if toRecipe {
		text, err := lang.PercentFromNotebook(src)
		if err != nil {
			return starkit.Inputf("%s: %v", opts.File, err)
		}
		out = []byte(text)
	} else if out, err = lang.NotebookFromPercent(string(src)); err != nil {
		return starkit.Inputf("%s: %v", opts.File, err)
	}
	dest := opts.Output
	if dest == "-" {
		_, err := opts.Out.Write(out)
		return err
	}
	if dest == "" {
		if toRecipe {
			dest = strings.TrimSuffix(opts.File, ".ipynb") + ".star"
		} else {
			dest = strings.TrimSuffix(opts.File, ".star") + ".ipynb"
		}
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if opts.Force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(dest, flags, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return starkit.Inputf("kumo convert: %s exists; give -o another file, or --force to replace it", dest)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(out); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(opts.Out, "wrote %s\n", dest)
	return nil
}
