// Command up keeps a real test OpenStack running (realstack) until
// Ctrl-C, for trying kumo's openstack provider by hand and for running
// the real-cloud tests against it again and again (make openstack-up;
// KUMO_REALSTACK_DIR=DIR lets the tests use it instead of starting one).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kumo-dev/kumo/providers/openstack/realstack"
)

func main() {
	dir := flag.String("dir", "", "the cloud's folder (default: a new one under the temporary folder)")
	flag.Parse()
	if *dir == "" {
		d, err := os.MkdirTemp("", "kumo-realstack-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		*dir = d
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cloud, err := realstack.Start(ctx, realstack.Options{Dir: *dir, Log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	env := filepath.Join(*dir, "env.sh")
	os.WriteFile(env, []byte("export "+strings.Join(cloud.Env(), " ")+"\n"), 0o600)
	fmt.Printf("a real OpenStack runs in %s until Ctrl-C:\n  . %s    # the openstack CLI and kumo use it\n  KUMO_REALSTACK_DIR=%s make test-openstack\n", *dir, env, *dir)
	<-ctx.Done()
	cloud.Stop()
}
