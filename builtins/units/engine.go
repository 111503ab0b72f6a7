package units

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	kssh "github.com/kumo-dev/kumo/builtins/ssh"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/fleet"
	"github.com/kumo-dev/kumo/state"
)

// engineOf is the resource engine serving the run thread belongs to,
// and where the running builtin was called from.
func engineOf(thread *starlark.Thread) (*builtins.Env, *fleet.Engine, fleet.Call, error) {
	env, err := builtins.FromThread(thread)
	if err != nil {
		return nil, nil, fleet.Call{}, err
	}
	return env, Engine(env), callOf(thread), nil
}

// engineIn is engineOf working in run: a value's unit group may be
// another run's (see fleet.Engine.In).
func engineIn(thread *starlark.Thread, run string) (*builtins.Env, *fleet.Engine, fleet.Call, error) {
	env, eng, call, err := engineOf(thread)
	if err != nil {
		return nil, nil, call, err
	}
	eng, err = eng.In(run)
	return env, eng, call, err
}

func callOf(thread *starlark.Thread) fleet.Call {
	site := builtins.CallSiteOf(thread)
	return fleet.Call{Site: site.Site, Effects: site.Effects}
}

// failed wraps an engine error for builtin b. Work cut short by Ctrl-C
// fails in as many ways as it had calls under way (each SDK error says
// "context canceled" its own way): that is one error, saying so.
func failed(thread *starlark.Thread, b *starlark.Builtin, err error) error {
	if err != nil && errors.Is(starkit.Context(thread).Err(), context.Canceled) {
		err = fleet.ErrInterrupted
	}
	return builtins.Wrap(b, err)
}

// Engine is the resource engine of env's run: nodes are ready when they
// answer SSH through the run's connection pool.
func Engine(env *builtins.Env) *fleet.Engine {
	pool := kssh.PoolOf(env)
	e := fleet.New(env.Store, env.Run, env.Providers)
	e.Report, e.Fault, e.Join = env, env.Fault, env.Join
	e.Ready = func(ctx context.Context, n fleet.Node) error { return waitSSH(ctx, env, pool, n) }
	e.Disconnect = func(n fleet.Node) { pool.DropNode(state.NodeKeyTarget(n.ID)) }
	return e
}

// sshPatience is how long a node may fail to answer SSH before kumo says
// so (and again after as long).
var sshPatience = 30 * time.Second

// waitSSH polls until the node completes an SSH login and runs `true`.
// A refused host key is final; anything else is retried until ctx ends.
func waitSSH(ctx context.Context, env *builtins.Env, pool *kssh.Pool, n fleet.Node) error {
	ep, err := env.Target(nodeValue(n))
	if err != nil {
		return err
	}
	delay := 50 * time.Millisecond
	start, told := time.Now(), time.Duration(0)
	for {
		err := pool.Ping(ctx, ep)
		if err == nil {
			return nil
		}
		var hk *kssh.HostKeyError
		if errors.As(err, &hk) {
			return err
		}
		// A node that keeps refusing says why, now and then: a wrong key
		// or a closed port should not look like a slow boot for minutes.
		if waited := time.Since(start); waited-told >= sshPatience {
			told = waited
			env.Note(fmt.Sprintf("%s does not answer SSH yet (%s): %v", n.Name, waited.Round(time.Second), err))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer SSH in time: %v", n.Name, err)
		case <-time.After(delay):
		}
		if delay < time.Second {
			delay *= 2
		}
	}
}
