package files

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/kumo-dev/kumo/builtins"
	kssh "github.com/kumo-dev/kumo/builtins/ssh"
)

// Hosts without an SFTP subsystem (many hardened ones) get their files
// through plain exec channels, as `scp -O` and Ansible's "smart"
// transfer do: the content streams through cat into a temporary file
// beside the destination, which is renamed over it only once its size
// and SHA-256 match what was sent, so a cut transfer never leaves a
// half-written file under the real name.

// remoteSum prints the SHA-256 of its standard input with whichever
// tool the host has, or "-" when it has none (then only the size is
// compared).
const remoteSum = `{ sha256sum 2>/dev/null || shasum -a 256 2>/dev/null || openssl dgst -sha256 -r 2>/dev/null || echo -; }`

// uploadExec writes what r holds to dest on ep with mode.
func uploadExec(ctx context.Context, pool *kssh.Pool, ep builtins.Endpoint, dest string, r io.Reader, mode os.FileMode) error {
	tmp := tempName(dest)
	dir := path.Dir(dest)
	mkdir := ""
	if dir != "." && dir != "/" {
		mkdir = "mkdir -p -- " + kssh.Quote(dir) + " && "
	}
	t := kssh.Quote(tmp)
	write := "umask 077 && " + mkdir + "cat > " + t +
		" && chmod " + strconv.FormatUint(uint64(mode.Perm()), 8) + " " + t +
		" && wc -c < " + t + " && " + remoteSum + " < " + t +
		" || { s=$?; rm -f -- " + t + "; exit $s; }"
	h := sha256.New()
	sent := &countingWriter{w: h}
	out, err := pool.Exec(ctx, ep, kssh.Command{Cmd: write, Stdin: io.TeeReader(r, sent)})
	if err != nil {
		return err
	}
	if out.ExitCode != 0 {
		return fmt.Errorf("writing %s: %s", tmp, remoteError(out))
	}
	size, sum := parseSizeSum(out.Stdout)
	problem := ""
	switch {
	case size != sent.n:
		problem = fmt.Sprintf("%d bytes arrived of %d sent", size, sent.n)
	case sum != "-" && sum != hex.EncodeToString(h.Sum(nil)):
		problem = "the SHA-256 of what arrived differs from what was sent"
	}
	commit := "mv -f -- " + t + " " + kssh.Quote(dest)
	if problem != "" {
		commit = "rm -f -- " + t
	}
	out, err = pool.Exec(ctx, ep, kssh.Command{Cmd: commit})
	switch {
	case err != nil:
		return err
	case problem != "":
		return fmt.Errorf("transfer damaged (%s); %s was left as it was", problem, dest)
	case out.ExitCode != 0:
		return fmt.Errorf("renaming %s into place: %s", tmp, remoteError(out))
	}
	return nil
}

// downloadExec copies src on ep into w: cat sends the bytes on stdout,
// then the checksum on stderr's last line.
func downloadExec(ctx context.Context, pool *kssh.Pool, ep builtins.Endpoint, src string, w io.Writer) error {
	s := kssh.Quote(src)
	h := sha256.New()
	counter := &countingWriter{w: io.MultiWriter(w, h)}
	out, err := pool.Exec(ctx, ep, kssh.Command{
		Cmd:    "cat -- " + s + " && { wc -c < " + s + " && " + remoteSum + " < " + s + "; } >&2",
		Stdout: counter,
	})
	if err != nil {
		return err
	}
	if out.ExitCode != 0 {
		return fmt.Errorf("%s", remoteError(out))
	}
	size, sum := parseSizeSum(out.Stderr)
	switch {
	case size != counter.n:
		return fmt.Errorf("transfer damaged: %d bytes arrived, the file has %d", counter.n, size)
	case sum != "-" && sum != hex.EncodeToString(h.Sum(nil)):
		return fmt.Errorf("transfer damaged: the SHA-256 of what arrived differs from the file's")
	}
	return nil
}

// parseSizeSum reads the last two lines of a transfer script's report:
// the size from wc -c, then the checksum tool's line (its first word).
func parseSizeSum(report string) (int64, string) {
	lines := strings.Split(strings.TrimSpace(report), "\n")
	if len(lines) < 2 {
		return -1, ""
	}
	size, err := strconv.ParseInt(strings.TrimSpace(lines[len(lines)-2]), 10, 64)
	if err != nil {
		size = -1
	}
	sum := strings.Fields(lines[len(lines)-1])
	if len(sum) == 0 {
		return size, ""
	}
	return size, sum[0]
}

// remoteError is what a failed transfer script said, or its exit code.
func remoteError(out kssh.Outcome) string {
	if msg := strings.TrimSpace(out.Stderr); msg != "" {
		return msg
	}
	return fmt.Sprintf("exit code %d", out.ExitCode)
}

// countingWriter counts what passes through it to w (a hash, say).
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
