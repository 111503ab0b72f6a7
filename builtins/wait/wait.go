// Package wait holds the builtins that wait for services: wait_port and
// wait_http.
package wait

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/starkit"
)

// Builtins of this family.
var Builtins = []*builtins.Def{{
	Name: "wait_port",
	Doc: `wait_port(target, port, timeout="5m")
Waits until a TCP connection to port on target (a node, an address or a
list of them) succeeds, from kumo's host. Fails after timeout, saying
what the last attempt got.`,
	Fn:        waitPort,
	Effectful: true,
	Plan: func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (builtins.Effect, starlark.Value, error) {
		return builtins.Effect{Kind: builtins.EffectWait, What: builtins.DescribeCall("wait_port", nil, args, kwargs)}, starlark.None, nil
	},
}, {
	Name: "wait_http",
	Doc: `wait_http(url, status=200, timeout="5m")
Polls url from kumo's host until it answers with status. Returns a struct
with .status and .body (the first MiB).`,
	Fn:        waitHTTP,
	Effectful: true,
}}

// poll calls try with growing pauses until it succeeds or ctx ends,
// showing on env's status line what it waits for and what the last try
// got.
func poll(ctx context.Context, env *builtins.Env, what string, limit time.Duration, try func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	defer env.Status("")
	delay := 50 * time.Millisecond
	for {
		err := try(ctx)
		if err == nil {
			return nil
		}
		env.Status(fmt.Sprintf("waiting for %s (%v)", what, err))
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %s: %v", limit, err)
		case <-time.After(delay):
		}
		if delay < 2*time.Second {
			delay *= 2
		}
	}
}

func waitPort(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var target starlark.Value
	var port int
	timeout := builtins.Timeout(5 * time.Minute)
	if err := builtins.Unpack(b, args, kwargs, "target", &target, "port", &port, "timeout?", &timeout); err != nil {
		return nil, err
	}
	if port < 1 || port > 65535 {
		return nil, builtins.Inputf(b, "port %d is out of range", port)
	}
	limit := timeout.D()
	env, err := builtins.FromThread(thread)
	if err != nil {
		return nil, err
	}
	eps, _, err := env.Targets(target)
	if err != nil {
		return nil, builtins.TargetError(b, err)
	}
	for _, ep := range eps {
		addr := net.JoinHostPort(ep.Host, strconv.Itoa(port))
		err := poll(starkit.Context(thread), env, fmt.Sprintf("port %d on %s", port, ep.Label), limit, func(ctx context.Context) error {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", addr)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err != nil {
			return nil, builtins.Errorf(b, "%s: port %d: %v", ep.Label, port, err)
		}
	}
	return starlark.None, nil
}

func waitHTTP(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var url string
	status := 200
	timeout := builtins.Timeout(5 * time.Minute)
	if err := builtins.Unpack(b, args, kwargs, "url", &url, "status?", &status, "timeout?", &timeout); err != nil {
		return nil, err
	}
	limit := timeout.D()
	env, _ := builtins.FromThread(thread) // wait_http needs no run; without one it shows no status
	var got int
	var body []byte
	client := &http.Client{Timeout: 10 * time.Second}
	err := poll(starkit.Context(thread), env, url, limit, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		got = resp.StatusCode
		body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if got != status {
			return fmt.Errorf("status %d, want %d", got, status)
		}
		return nil
	})
	if err != nil {
		return nil, builtins.Errorf(b, "%s: %v", url, err)
	}
	return starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{
		"status": starlark.MakeInt(got),
		"body":   starlark.String(body),
	}), nil
}
