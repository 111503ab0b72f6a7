// Package files holds put_file and get_file: file transfer to and from
// nodes over SFTP, or over exec channels where a host has no SFTP, on
// the run's pooled SSH connections.
package files

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	kssh "github.com/kumo-dev/kumo/builtins/ssh"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/providers"
)

// Builtins of this family.
var Builtins = []*builtins.Def{{
	Name: "put_file",
	Doc: `put_file(target, dest, content=None, src=None, mode=0o644)
Writes a file on target (a node, an address or a list of them): its text
is content (a string, bytes or a secret()), or the local file src
(relative to the recipe). dest is relative to the login folder unless
absolute; missing parent folders are created. The file is written
beside dest and renamed over it, so it is never seen half-written. Hosts
without SFTP get it over an exec channel (size and SHA-256 checked);
kumo run --verbose says which. A target whose dest already has this
content and mode is not written again. Returns the names of the targets
whose file changed ([] when none did), as files.install does.`,
	Fn:        putFile,
	Effectful: true,
	Plan:      planCopy("put_file", true),
}, {
	Name: "get_file",
	Doc: `get_file(target, src, dest=None)
Copies the file src from one target. With dest=None returns its content
as a string; otherwise writes it to the local path dest (relative to the
current folder) and returns dest.`,
	Fn:        getFile,
	Effectful: true,
	Plan:      planCopy("get_file", false),
}, {
	Name: starkit.ReadFileBuiltin,
	Doc: `read_file(path)
Returns the text of the local file path, relative to the recipe's folder
(a template kept beside the recipe, say). path must be a string literal:
the file's content is an input of the cell, so editing the file runs the
cell again, as editing the cell does ("file motd.txt changed"). Files up
to 16 MiB.`,
	Fn: readFile,
}}

// maxReadFile bounds read_file: a template, not a disk image.
const maxReadFile = 16 << 20

func readFile(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	if err := builtins.Unpack(b, args, kwargs, "path", &name); err != nil {
		return nil, err
	}
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(starkit.RecipeDir(thread), path)
	}
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return nil, builtins.Inputf(b, "%s: %v (paths are relative to the recipe's folder)", name, errors.Unwrap(err))
	case st.IsDir():
		return nil, builtins.Inputf(b, "%s is a folder: give a file", name)
	case st.Size() > maxReadFile:
		return nil, builtins.Inputf(b, "%s has %d bytes; read_file takes up to %d (put_file(src=...) copies large files)", name, st.Size(), maxReadFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, builtins.Wrap(b, err)
	}
	return starlark.String(data), nil
}

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
	var size int64
	var sum string // the content's SHA-256, hex
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
		size = int64(len(text))
		h := sha256.Sum256([]byte(text))
		sum = hex.EncodeToString(h[:])
	case src != starlark.None:
		path, ok := starlark.AsString(src)
		if !ok {
			return nil, builtins.Inputf(b, "for parameter src: got %s, want string", src.Type())
		}
		if !filepath.IsAbs(path) {
			if dir := starkit.RecipeDir(thread); dir != "" {
				path = filepath.Join(dir, path)
			}
		}
		fi, err := os.Stat(path)
		if err != nil {
			return nil, builtins.Inputf(b, "src: %v", err)
		}
		size = fi.Size()
		open = func() (io.ReadCloser, error) { return os.Open(path) }
		if sum, err = providers.FileSHA256(path); err != nil {
			return nil, builtins.Inputf(b, "src: %v", err)
		}
	default:
		return nil, builtins.Inputf(b, "give content= or src=")
	}
	eps, _, err := env.Targets(target)
	if err != nil {
		return nil, builtins.TargetError(b, err)
	}
	ctx := starkit.Context(thread)
	progress := env.StepProgress(thread, b, " "+dest, eps)
	defer progress.End()
	errs := make([]string, len(eps))
	changed := make([]bool, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer progress.Done()
			counted := func() (io.ReadCloser, error) {
				r, err := open()
				if err != nil {
					return nil, err
				}
				return &progressReader{ReadCloser: r, size: size, show: func(text string) { progress.Line(ep.Label, text) }}, nil
			}
			var err error
			if changed[i], err = UploadChanged(ctx, env, ep, dest, counted, sum, os.FileMode(mode)); err != nil {
				errs[i] = fmt.Sprintf("%s: %s: %v", ep.Label, dest, err)
			}
		}()
	}
	wg.Wait()
	if msg := joinNonEmpty(errs); msg != "" {
		return nil, fmt.Errorf("%s: %s", b.Name(), msg)
	}
	var names []starlark.Value
	for i, ep := range eps {
		if changed[i] {
			names = append(names, starlark.String(ep.Label))
		}
	}
	return starlark.NewList(names), nil
}

// UploadChanged writes dest on ep as Upload does unless it already holds
// the content whose SHA-256 is sum, and mode; it says whether it wrote.
func UploadChanged(ctx context.Context, env *builtins.Env, ep builtins.Endpoint, dest string, open func() (io.ReadCloser, error), sum string, mode os.FileMode) (bool, error) {
	if holds(ctx, env, ep, dest, sum, mode) {
		return false, nil
	}
	return true, Upload(ctx, env, ep, dest, open, mode)
}

// holds reports whether dest on ep already has the content whose
// SHA-256 is sum, and mode: one command, nothing sent. Any doubt (no
// file, no sha256sum there, a failed check) is a no: the file is written.
func holds(ctx context.Context, env *builtins.Env, ep builtins.Endpoint, dest, sum string, mode os.FileMode) bool {
	q := kssh.Quote(dest)
	out, err := kssh.PoolOf(env).Exec(ctx, ep, kssh.Command{
		Cmd:     "[ -f " + q + " ] && sha256sum < " + q + " && stat -c %a " + q,
		Timeout: time.Minute,
	})
	if err != nil || out.ExitCode != 0 {
		return false
	}
	fields := strings.Fields(out.Stdout)
	return len(fields) >= 3 && fields[0] == sum && fields[len(fields)-1] == strconv.FormatUint(uint64(mode.Perm()), 8)
}

// Upload writes what open returns to dest on ep with mode, streaming:
// the content is never held in memory whole.
func Upload(ctx context.Context, env *builtins.Env, ep builtins.Endpoint, dest string, open func() (io.ReadCloser, error), mode os.FileMode) error {
	r, err := open()
	if err != nil {
		return err
	}
	defer r.Close()
	return transfer(ctx, env, ep, "put_file "+dest, func(c *sftp.Client) error {
		if dir := path.Dir(dest); dir != "." && dir != "/" {
			if err := c.MkdirAll(dir); err != nil {
				return fmt.Errorf("creating %s: %w", dir, err)
			}
		}
		// Written beside dest and renamed over it: a cut transfer never
		// leaves a half-written file under the real name.
		tmp := tempName(dest)
		f, err := c.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		if err != nil {
			return err
		}
		_, err = f.ReadFrom(r)
		if err == nil {
			err = f.Chmod(mode)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			if err = c.PosixRename(tmp, dest); err != nil {
				err = fmt.Errorf("renaming %s into place: %w", tmp, err)
			}
		}
		if err != nil {
			c.Remove(tmp)
		}
		return err
	}, func(pool *kssh.Pool) error {
		return uploadExec(ctx, pool, ep, dest, r, mode)
	})
}

// Download copies src on ep into w, streaming.
func Download(ctx context.Context, env *builtins.Env, ep builtins.Endpoint, src string, w io.Writer) error {
	return transfer(ctx, env, ep, "get_file "+src, func(c *sftp.Client) error {
		f, err := c.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteTo(w)
		return err
	}, func(pool *kssh.Pool) error {
		return downloadExec(ctx, pool, ep, src, w)
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
	ctx := starkit.Context(thread)
	var out starlark.Value
	if dest == starlark.None {
		var sb strings.Builder
		err = Download(ctx, env, ep, src, &sb)
		out = starlark.String(env.Secrets.Mask(sb.String()))
	} else {
		err = downloadTo(ctx, env, ep, src, dest)
		out = dest
	}
	if err != nil {
		return nil, builtins.Errorf(b, "%s: %s: %v", ep.Label, src, err)
	}
	return out, nil
}

func downloadTo(ctx context.Context, env *builtins.Env, ep builtins.Endpoint, src string, dest starlark.Value) error {
	local, ok := starlark.AsString(dest)
	if !ok {
		return fmt.Errorf("dest: got %s, want string", dest.Type())
	}
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return err
	}
	tmp := tempName(local)
	w, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	err = Download(ctx, env, ep, src, w)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, local)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// tempName is a fresh name beside p for writing it whole before a rename.
func tempName(p string) string {
	var suffix [6]byte
	rand.Read(suffix[:])
	dir, name := path.Split(p)
	return dir + "." + name + ".kumo-" + hex.EncodeToString(suffix[:])
}

// transfer moves a file over SFTP, or over exec channels on hosts that
// have no SFTP subsystem; which one is said in --verbose.
func transfer(ctx context.Context, env *builtins.Env, ep builtins.Endpoint, what string, viaSFTP func(*sftp.Client) error, viaExec func(*kssh.Pool) error) error {
	pool := kssh.PoolOf(env)
	err := transferOnce(ctx, env, pool, ep, what, viaSFTP, viaExec)
	if errors.Is(err, kssh.ErrConnectionLost) || errors.Is(err, sftp.ErrSSHFxConnectionLost) {
		// The next call dials afresh rather than meet the dead connection.
		pool.Drop(ep)
		return errors.New("the connection was lost during the transfer (the destination holds the old file or the whole new one, never a part): run it again")
	}
	return err
}

func transferOnce(ctx context.Context, env *builtins.Env, pool *kssh.Pool, ep builtins.Endpoint, what string, viaSFTP func(*sftp.Client) error, viaExec func(*kssh.Pool) error) error {
	hosts := env.Plugin("files.nosftp", func() any { return &noSFTPHosts{why: map[string]string{}} }).(*noSFTPHosts)
	why := hosts.get(ep)
	if why == "" {
		c, err := startSFTP(ctx, pool, ep)
		if err == nil {
			defer c.Close()
			env.Detail(fmt.Sprintf("%s: %s over SFTP", ep.Label, what))
			return viaSFTP(c)
		}
		if !errors.Is(err, errNoSFTP) {
			return err
		}
		why = err.Error()
		hosts.set(ep, why)
	}
	env.Detail(fmt.Sprintf("%s: %s over an exec channel, size and SHA-256 checked (%s)", ep.Label, what, why))
	return viaExec(pool)
}

var errNoSFTP = errors.New("no SFTP")

// startSFTP opens an SFTP session on the pooled connection to ep. It
// fails with errNoSFTP when the connection works but SFTP does not.
func startSFTP(ctx context.Context, pool *kssh.Pool, ep builtins.Endpoint) (*sftp.Client, error) {
	for attempt := 0; ; attempt++ {
		client, err := pool.Client(ctx, ep)
		if err != nil {
			return nil, err
		}
		c, err := sftp.NewClient(client)
		if err == nil {
			return c, nil
		}
		// A connection that still opens sessions is alive: the host has
		// no SFTP. Otherwise the pooled connection died: re-dial once.
		if sess, serr := client.NewSession(); serr == nil {
			sess.Close()
			return nil, fmt.Errorf("%w: %v", errNoSFTP, err)
		}
		pool.Drop(ep)
		if attempt == 1 {
			return nil, fmt.Errorf("starting SFTP: %w", err)
		}
	}
}

// noSFTPHosts remembers for the run which hosts have no SFTP, and why,
// so each is asked once.
type noSFTPHosts struct {
	mu  sync.Mutex
	why map[string]string
}

func (h *noSFTPHosts) get(ep builtins.Endpoint) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.why[ep.User+"@"+ep.Addr()]
}

func (h *noSFTPHosts) set(ep builtins.Endpoint, why string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.why[ep.User+"@"+ep.Addr()] = why
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

// progressReader tells how much of a file has gone, every MiB.
type progressReader struct {
	io.ReadCloser
	size, read, shown int64
	show              func(string)
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.ReadCloser.Read(b)
	r.read += int64(n)
	if r.read-r.shown >= 1<<20 {
		r.shown = r.read
		r.show(fmt.Sprintf("%s of %s sent", mib(r.read), mib(r.size)))
	}
	return n, err
}

// Size lets SFTP write a file of known size with requests in flight.
func (r *progressReader) Size() int64 { return r.size }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
