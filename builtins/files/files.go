// Package files holds put_file and get_file: file transfer to and from
// nodes over SFTP, on the run's pooled SSH connections.
package files

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/pkg/sftp"
	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	kssh "github.com/kumo-dev/kumo/builtins/ssh"
	"github.com/kumo-dev/kumo/lang"
)

// Builtins of this family.
var Builtins = []*builtins.Def{{
	Name: "put_file",
	Doc: `put_file(target, dest, content=None, src=None, mode=0o644)
Writes a file on target (a node, an address or a list of them): its text
is content (a string, bytes or a secret()), or the local file src
(relative to the recipe). dest is relative to the login folder unless
absolute; missing parent folders are created. Returns None.`,
	Fn:      putFile,
	Journal: true,
	Plan:    planCopy("put_file", true),
}, {
	Name: "get_file",
	Doc: `get_file(target, src, dest=None)
Copies the file src from one target. With dest=None returns its content
as a string; otherwise writes it to the local path dest (relative to the
current folder) and returns dest.`,
	Fn:      getFile,
	Journal: true,
	Plan:    planCopy("get_file", false),
}}

// planCopy plans a file copy: to the targets (put, whose result is
// None), or from one (get, whose result is known only live).
func planCopy(name string, put bool) builtins.Planner {
	return func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (builtins.Effect, starlark.Value, error) {
		if len(args) < 2 {
			return builtins.Effect{}, nil, builtins.Inputf(b, "want a target and a path")
		}
		t := builtins.TargetText(args[0])
		path, _ := starlark.AsString(args[1])
		if put {
			return builtins.Effect{Kind: builtins.EffectCopy, Target: t, What: "write " + path + " on " + t}, starlark.None, nil
		}
		return builtins.Effect{Kind: builtins.EffectRead, Target: t, What: "read " + path + " from " + t}, nil, nil
	}
}

func putFile(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var target starlark.Value
	var dest string
	var content starlark.Value = starlark.None
	var src starlark.Value = starlark.None
	mode := 0o644
	if err := builtins.Unpack(b, args, kwargs, "target", &target, "dest", &dest, "content?", &content, "src?", &src, "mode?", &mode); err != nil {
		return nil, err
	}
	env, err := builtins.FromThread(thread)
	if err != nil {
		return nil, err
	}
	var open func() (io.ReadCloser, error)
	switch {
	case content != starlark.None && src != starlark.None:
		return nil, builtins.Inputf(b, "give content or src, not both")
	case content != starlark.None:
		text, ok, err := builtins.TextArg(env, content)
		if err != nil {
			return nil, builtins.Wrap(b, err)
		}
		if !ok {
			return nil, builtins.Inputf(b, "for parameter content: got %s, want string, bytes or secret", content.Type())
		}
		open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(text)), nil }
	case src != starlark.None:
		path, ok := starlark.AsString(src)
		if !ok {
			return nil, builtins.Inputf(b, "for parameter src: got %s, want string", src.Type())
		}
		if !filepath.IsAbs(path) {
			if dir, ok := thread.Local("kumo.recipedir").(string); ok {
				path = filepath.Join(dir, path)
			}
		}
		if _, err := os.Stat(path); err != nil {
			return nil, builtins.Inputf(b, "src: %v", err)
		}
		open = func() (io.ReadCloser, error) { return os.Open(path) }
	default:
		return nil, builtins.Inputf(b, "give content= or src=")
	}
	eps, _, err := env.Targets(target)
	if err != nil {
		return nil, builtins.TargetError(b, err)
	}
	ctx := lang.Context(thread)
	pool := kssh.PoolOf(env)
	errs := make([]string, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := Upload(ctx, pool, ep, dest, open, os.FileMode(mode)); err != nil {
				errs[i] = fmt.Sprintf("%s: %s: %v", ep.Label, dest, err)
			}
		}()
	}
	wg.Wait()
	if msg := joinNonEmpty(errs); msg != "" {
		return nil, fmt.Errorf("%s: %s", b.Name(), msg)
	}
	return starlark.None, nil
}

// Upload writes what open returns to dest on ep, streaming: the content
// is never held in memory whole.
func Upload(ctx context.Context, pool *kssh.Pool, ep builtins.Endpoint, dest string, open func() (io.ReadCloser, error), mode os.FileMode) error {
	return withSFTP(ctx, pool, ep, func(c *sftp.Client) error {
		r, err := open()
		if err != nil {
			return err
		}
		defer r.Close()
		if dir := path.Dir(dest); dir != "." && dir != "/" {
			if err := c.MkdirAll(dir); err != nil {
				return fmt.Errorf("creating %s: %w", dir, err)
			}
		}
		f, err := c.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		if err != nil {
			return err
		}
		if _, err := f.ReadFrom(r); err != nil {
			f.Close()
			return err
		}
		if err := f.Chmod(mode); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
}

// Download copies src on ep into w, streaming.
func Download(ctx context.Context, pool *kssh.Pool, ep builtins.Endpoint, src string, w io.Writer) error {
	return withSFTP(ctx, pool, ep, func(c *sftp.Client) error {
		f, err := c.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteTo(w)
		return err
	})
}

func getFile(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var target starlark.Value
	var src string
	var dest starlark.Value = starlark.None
	if err := builtins.Unpack(b, args, kwargs, "target", &target, "src", &src, "dest?", &dest); err != nil {
		return nil, err
	}
	env, err := builtins.FromThread(thread)
	if err != nil {
		return nil, err
	}
	ep, err := env.Target(target)
	if err != nil {
		return nil, builtins.TargetError(b, err)
	}
	ctx, pool := lang.Context(thread), kssh.PoolOf(env)
	var out starlark.Value
	if dest == starlark.None {
		var sb strings.Builder
		err = Download(ctx, pool, ep, src, &sb)
		out = starlark.String(env.Secrets.Mask(sb.String()))
	} else {
		err = downloadTo(ctx, pool, ep, src, dest)
		out = dest
	}
	if err != nil {
		return nil, builtins.Errorf(b, "%s: %s: %v", ep.Label, src, err)
	}
	return out, nil
}

func downloadTo(ctx context.Context, pool *kssh.Pool, ep builtins.Endpoint, src string, dest starlark.Value) error {
	local, ok := starlark.AsString(dest)
	if !ok {
		return fmt.Errorf("dest: got %s, want string", dest.Type())
	}
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return err
	}
	w, err := os.Create(local)
	if err != nil {
		return err
	}
	if err := Download(ctx, pool, ep, src, w); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// withSFTP opens an SFTP session on the pooled connection to ep.
func withSFTP(ctx context.Context, pool *kssh.Pool, ep builtins.Endpoint, f func(*sftp.Client) error) error {
	client, err := pool.Client(ctx, ep)
	if err != nil {
		return err
	}
	c, err := sftp.NewClient(client)
	if err != nil {
		// The pooled connection may have died; re-dial once.
		pool.Drop(ep)
		if client, err = pool.Client(ctx, ep); err != nil {
			return err
		}
		if c, err = sftp.NewClient(client); err != nil {
			return fmt.Errorf("starting SFTP: %w", err)
		}
	}
	defer c.Close()
	return f(c)
}

func joinNonEmpty(msgs []string) string {
	var out []string
	for _, m := range msgs {
		if m != "" {
			out = append(out, m)
		}
	}
	return strings.Join(out, "; ")
}
