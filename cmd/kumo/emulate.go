package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/providers/aws/ec2emu"
	"github.com/kumo-dev/kumo/providers/emulate"
	"github.com/kumo-dev/kumo/providers/openstack/osemu"
)

// EmulateOptions are the inputs of `kumo emulate`.
type EmulateOptions struct {
	IO
	Cloud   string
	Addr    string
	Dir     string
	APIOnly bool
	Backing string
	Faults  emulate.Faults
	// Capacity: instance type (EC2) or flavor (Nova) -> how many may exist.
	Capacity map[string]int
}

func newCmdEmulate(f *factory, runF func(*EmulateOptions) error) *cobra.Command {
	opts := &EmulateOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "emulate aws|openstack",
		Short: "Serve a local emulator of a cloud API, whose instances are real machines",
		Long: `Serve, in the foreground until interrupted, an emulator of the cloud API
kumo's provider uses, on a loopback address, so that a recipe written for
that cloud runs end to end with no account. It prints the environment
variables that point kumo (and the cloud's own clients) at it.

Where this host runs container nodes (root, systemd-nspawn and the image
'kumo image build' makes), each instance is a container node and the
emulator is a site of its own, as a cloud's VPC is: a private range no
other site reaches, NAT to the host's uplink, and public (EC2) or
floating (OpenStack) addresses on the sites' shared internet. Elsewhere
instances are local nodes: processes on this host running as you, on
which kumo's stdlib refuses what would change a system (pkg, users,
systemd). --backing chooses.`,
		Example: `  kumo emulate aws --addr 127.0.0.1:4566
  kumo emulate openstack --addr 127.0.0.1:5000
  kumo emulate aws --backing local --latency 300ms --throttle-every 10
  kumo emulate openstack --capacity m1.large=2`,
		Args:      argsUsage(cobra.ExactArgs(1)),
		ValidArgs: []string{"aws", "openstack"},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Cloud = args[0]
			for what, n := range opts.Capacity {
				if n < 0 {
					return usageError{fmt.Errorf("--capacity %s=%d: want how many instances fit, 0 or more", what, n), cmd}
				}
			}
			if opts.Dir == "" {
				opts.Dir = filepath.Join(filepath.Dir(f.locator().PathFor("")), "emulators", opts.Cloud)
			}
			if runF != nil {
				return runF(opts)
			}
			return emulateRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Addr, "addr", "127.0.0.1:0", "address to serve on")
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "where the instances' nodes live (default: beside the state)")
	cmd.Flags().BoolVar(&opts.APIOnly, "api-only", false, "instances have no nodes behind them (made-up addresses in 198.18.0.0/15): for measuring the API at scale")
	cmd.Flags().StringVar(&opts.Backing, "backing", "auto", "what stands for instances: container nodes, local nodes, or auto (containers where this host runs them)")
	cmd.Flags().DurationVar(&opts.Faults.Latency, "latency", 0, "delay added to every API call")
	cmd.Flags().IntVar(&opts.Faults.ThrottleEvery, "throttle-every", 0, "fail every Nth call with the cloud's throttling error")
	cmd.Flags().IntVar(&opts.Faults.FailEvery, "fail-every", 0, "fail every Nth call with a 5xx error")
	cmd.Flags().StringToIntVar(&opts.Capacity, "capacity", nil, "how many instances of a type or flavor the cloud has room for, as t3.large=2, or in one zone, as t3.large@us-east-1b=1 (more answer with the cloud's own capacity error)")
	cmd.Flags().Float64Var(&opts.Faults.RatePerSecond, "rate", 0, "calls per second before throttling (0: unlimited)")
	return cmd
}

func emulateRun(ctx context.Context, opts *EmulateOptions) error {
	ctx, stop := interruptible(ctx)
	defer stop()
	if opts.Cloud != "aws" && opts.Cloud != "openstack" {
		return usageError{error: fmt.Errorf("no emulator for %q (have: aws, openstack)", opts.Cloud)}
	}
	backing, why, err := emulate.ChooseBacking(emulate.Backing(opts.Backing))
	if err != nil {
		return usageError{error: fmt.Errorf("--backing %s: %w", opts.Backing, err)}
	}
	if opts.APIOnly {
		backing = emulate.LocalBacking
	}
	switch {
	case opts.APIOnly:
		fmt.Fprintf(opts.Out, "# Instances have no machines behind them (--api-only).\n")
	case backing == emulate.ContainerBacking:
		fmt.Fprintf(opts.Out, "# Instances are container nodes on a site of their own (%s).\n", why)
	default:
		fmt.Fprintf(opts.Out, "# Instances are local nodes: processes on this host, running as you (%s).\n"+
			"# kumo's stdlib refuses to change the system on them (pkg, users, systemd).\n", oneLine(why))
	}
	switch opts.Cloud {
	case "aws":
		emu := ec2emu.New(ec2emu.Options{Dir: opts.Dir, Backing: backing, APIOnly: opts.APIOnly, Faults: opts.Faults, Capacity: opts.Capacity})
		url, err := emu.Listen(ctx, opts.Addr)
		if err != nil {
			return err
		}
		fmt.Fprintf(opts.Out, `# kumo's EC2 emulator serves %s.
# Point kumo (or any AWS SDK) at it:
export AWS_ENDPOINT_URL_EC2=%s
export AWS_ACCESS_KEY_ID=kumo-emulator
export AWS_SECRET_ACCESS_KEY=kumo-emulator
export AWS_REGION=us-east-1
# Ctrl-C stops it and deletes its instances.
`, url, url)
		<-ctx.Done()
		emu.Shutdown()
	case "openstack":
		emu := osemu.New(osemu.Options{Dir: opts.Dir, Backing: backing, APIOnly: opts.APIOnly, Faults: opts.Faults, Capacity: opts.Capacity})
		url, err := emu.Listen(ctx, opts.Addr)
		if err != nil {
			return err
		}
		fmt.Fprintf(opts.Out, `# kumo's OpenStack emulator (Keystone v3, Nova, Neutron, Glance) serves %s.
# Point kumo (or any OpenStack client) at it:
export OS_AUTH_URL=%s
export OS_USERNAME=%s
export OS_PASSWORD=%s
export OS_PROJECT_NAME=%s
export OS_DOMAIN_NAME=%s
export OS_USER_DOMAIN_NAME=%s
export OS_PROJECT_DOMAIN_NAME=%s
export OS_REGION_NAME=%s
# or, in clouds.yaml:
#   clouds:
#     kumo-emulator:
#       auth: {auth_url: %s, username: %s, password: %s, project_name: %s, user_domain_name: %s, project_domain_name: %s}
#       region_name: %s
# Ctrl-C stops it and deletes its servers.
`, url, url, osemu.User, osemu.Password, osemu.Project, osemu.Domain, osemu.Domain, osemu.Domain, osemu.Region,
			url, osemu.User, osemu.Password, osemu.Project, osemu.Domain, osemu.Domain, osemu.Region)
		<-ctx.Done()
		emu.Shutdown()
	}
	return nil
}

// oneLine is the first sentence of a long message, for a comment line.
func oneLine(s string) string {
	if i := strings.Index(s, ". "); i > 0 {
		return s[:i]
	}
	return s
}
