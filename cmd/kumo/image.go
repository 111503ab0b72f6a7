package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/internal/render"
	"github.com/kumo-dev/kumo/providers/container"
)

// ImageOptions are the inputs of `kumo image`.
type ImageOptions struct {
	IO
	Action string // build or list
	Name   string
	Quiet  bool
}

func newCmdImage(f *factory, runF func(*ImageOptions) error) *cobra.Command {
	opts := &ImageOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "image build [NAME] | image list",
		Short: "Build or list the images container nodes boot",
		Long: `Container nodes (spec("container", ...)) boot a Debian image built once per
machine with debootstrap, from the mirror the host's apt uses, and kept in
~/.cache/kumo/images ($KUMO_IMAGES) as a tarball with its content hash and
the extracted tree every node's overlay lies on. Building again changes new
nodes only. Needs root, debootstrap and systemd-nspawn.`,
		Example: `  kumo image build                  # debian-bookworm
  kumo image list`,
		Args:      argsUsage(cobra.RangeArgs(1, 2)),
		ValidArgs: []string{"build", "list"},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Action = args[0]
			opts.Name = container.DefaultImage
			if len(args) == 2 {
				opts.Name = args[1]
			}
			if runF != nil {
				return runF(opts)
			}
			return imageRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "do not show debootstrap's output")
	return cmd
}

func imageRun(ctx context.Context, opts *ImageOptions) error {
	images := container.Images{Dir: container.DefaultImagesDir()}
	switch opts.Action {
	case "list":
		tw := tabwriter.NewWriter(opts.Out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "IMAGE\tHASH\tSIZE\tBUILT")
		for _, img := range images.List() {
			fmt.Fprintf(tw, "%s\t%s\t%.0f MB\t%s\n", img.Name, img.Hash, float64(img.Size)/1e6, img.Built.Format("2006-01-02 15:04"))
		}
		tw.Flush()
		fmt.Fprintf(opts.Out, "(in %s; kumo builds: %v)\n", images.Dir, container.ImageNames())
		return nil
	case "build":
		ctx, stop := interruptible(ctx)
		defer stop()
		var log io.Writer = opts.Err
		if opts.Quiet {
			log = io.Discard
		}
		start := time.Now()
		img, err := images.Build(ctx, opts.Name, log)
		if err != nil {
			return err
		}
		fmt.Fprintf(opts.Out, "built image %s (%s, %.0f MB) in %s: %s\n", img.Name, img.Hash, float64(img.Size)/1e6, render.Round(time.Since(start)), img.Root)
		return nil
	}
	return usageError{error: fmt.Errorf("kumo image %s: want build or list", opts.Action)}
}
