package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/providers/local"
)

// newCmdNodeServer is the hidden command that is a local node: the local
// provider starts `kumo node-server --dir DIR` for each node it creates.
func newCmdNodeServer() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:    "node-server --dir DIR",
		Short:  "Serve one local node over SSH (started by the local provider)",
		Hidden: true,
		Args:   argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			ready := os.NewFile(3, "ready") // the provider's pipe, see local.ensureServer
			return local.Serve(dir, ready)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the node's folder")
	cmd.MarkFlagRequired("dir")
	return cmd
}
