package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/builtins/secret"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/state"
)

// SecretOptions are the inputs of `kumo secret`.
type SecretOptions struct {
	IO
	Store  func() (*state.Store, error)
	Action string // list, show or delete
	Name   string
	Yes    bool
}

func newCmdSecret(f *factory, runF func(*SecretOptions) error) *cobra.Command {
	opts := &SecretOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "secret list | secret show NAME | secret delete NAME",
		Short: "List, show or delete the secrets recipes generated",
		Long: `Secrets made by secret.generate() are kept in the state, sealed with a
key of yours outside it (` + "`~/.config/kumo/secret.key`" + `, or $KUMO_SECRET_KEY_FILE):
list names them with when and by which run they were made; show prints
one's value (for you to log in with, say); delete forgets one, so that
the next secret.generate makes a new value (nodes keep the old one until
the recipe that installs it runs again).`,
		Example: `  kumo secret list
  kumo secret show hub_admin
  kumo secret delete db_password --yes`,
		Args:      argsUsage(cobra.RangeArgs(1, 2)),
		ValidArgs: []string{"list", "show", "delete"},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Action = args[0]
			if len(args) == 2 {
				opts.Name = args[1]
			}
			opts.Store = f.locator().OpenExisting
			if runF != nil {
				return runF(opts)
			}
			return secretRun(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Yes, "yes", false, "delete without asking")
	return cmd
}

func secretRun(opts *SecretOptions) error {
	switch {
	case opts.Action == "list" && opts.Name == "":
	case (opts.Action == "show" || opts.Action == "delete") && opts.Name != "":
	default:
		return usageError{error: errors.New("want: kumo secret list | show NAME | delete NAME")}
	}
	store, err := opts.Store()
	if err != nil {
		return err
	}
	defer store.Close()
	switch opts.Action {
	case "list":
		secrets, err := store.Secrets()
		if err != nil {
			return err
		}
		if len(secrets) == 0 {
			fmt.Fprintf(opts.Out, "no generated secrets in %s\n", store.Path)
			return nil
		}
		tw := tabwriter.NewWriter(opts.Out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SECRET\tKIND\tRUN\tGENERATED")
		for _, s := range secrets {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Kind, s.Run, s.Created.Format("2006-01-02 15:04"))
		}
		return tw.Flush()
	case "show":
		v, err := secret.Generated(store, opts.Name)
		if errors.Is(err, state.ErrNotFound) {
			return starkit.Inputf("no generated secret %q in %s (kumo secret list names them)", opts.Name, store.Path)
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(opts.Out, v)
		return nil
	default:
		if _, err := store.Secret(opts.Name); errors.Is(err, state.ErrNotFound) {
			return starkit.Inputf("no generated secret %q in %s (kumo secret list names them)", opts.Name, store.Path)
		}
		if !opts.Yes {
			return starkit.Inputf("delete secret %s? Recipes that use it get a new value next time; pass --yes", opts.Name)
		}
		if _, err := store.DeleteSecret(opts.Name); err != nil {
			return err
		}
		fmt.Fprintf(opts.Out, "deleted secret %s\n", opts.Name)
		return nil
	}
}
