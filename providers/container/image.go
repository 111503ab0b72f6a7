package container

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kumo-dev/kumo/providers"
)

// Images are the root file systems nodes boot from. One is built once
// per machine with debootstrap, from the mirror the host's apt uses, and
// kept in the cache:
//
//	<dir>/<name>/<hash>.tar.gz   the build, as a compressed tarball
//	<dir>/<name>/<hash>/         the same tree, extracted: the read-only
//	                             lower layer of every node's overlay
//	<dir>/<name>/current         the hash a new node of <name> uses
//
// A node records the hash it was made from, so building an image again
// changes new nodes only.
type Images struct{ Dir string }

// DefaultImagesDir is $KUMO_IMAGES, else kumo/images in the user's cache
// folder (~/.cache/kumo/images).
func DefaultImagesDir() string {
	if d := os.Getenv("KUMO_IMAGES"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "kumo", "images")
	}
	return filepath.Join(os.TempDir(), "kumo-images")
}

// An imageRecipe says how an image is built.
type imageRecipe struct {
	Suite    string   // debootstrap's suite
	Packages []string // beyond minbase
}

// imageRecipes are the images kumo knows how to build.
var imageRecipes = map[string]imageRecipe{
	"debian-bookworm": {Suite: "bookworm", Packages: []string{
		"systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "python3", "iproute2",
		"ca-certificates", "iputils-ping", "curl", "less", "procps",
	}},
}

// DefaultImage is the image a container spec uses unless it says.
const DefaultImage = "debian-bookworm"

// ImageNames lists the images kumo can build.
func ImageNames() []string {
	var out []string
	for n := range imageRecipes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// An Image is a built image.
type Image struct {
	Name, Hash string
	Root       string // the extracted tree
	Tarball    string
	Size       int64 // of the tarball
	Built      time.Time
}

// Current is the image new nodes of name use.
func (im Images) Current(name string) (Image, error) {
	if _, ok := imageRecipes[name]; !ok {
		return Image{}, fmt.Errorf("container: no image %q (kumo builds: %s)", name, strings.Join(ImageNames(), ", "))
	}
	b, err := os.ReadFile(filepath.Join(im.Dir, name, "current"))
	if err != nil {
		return Image{}, fmt.Errorf("container: image %s is not built on this machine: run kumo image build %s (about a minute, once)", name, name)
	}
	return im.image(name, strings.TrimSpace(string(b)))
}

func (im Images) image(name, hash string) (Image, error) {
	img := Image{Name: name, Hash: hash, Root: filepath.Join(im.Dir, name, hash), Tarball: filepath.Join(im.Dir, name, hash+".tar.gz")}
	if _, err := os.Stat(filepath.Join(img.Root, "etc", "os-release")); err != nil {
		return img, fmt.Errorf("container: image %s (%s) is damaged or gone: run kumo image build %s", name, hash, name)
	}
	if st, err := os.Stat(img.Tarball); err == nil {
		img.Size, img.Built = st.Size(), st.ModTime()
	}
	return img, nil
}

// List lists the current builds.
func (im Images) List() []Image {
	var out []Image
	for _, name := range ImageNames() {
		if img, err := im.Current(name); err == nil {
			out = append(out, img)
		}
	}
	return out
}

// Build builds image name: debootstrap into a folder beside the cache
// (so that the result is renamed into place, never half there), made
// ready to boot as a container, packed and hashed. log receives
// debootstrap's output.
func (im Images) Build(ctx context.Context, name string, log io.Writer) (Image, error) {
	rec, ok := imageRecipes[name]
	if !ok {
		return Image{}, fmt.Errorf("container: no image %q (kumo builds: %s)", name, strings.Join(ImageNames(), ", "))
	}
	if err := checkHost(); err != nil {
		return Image{}, err
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return Image{}, errors.New("container: building an image needs debootstrap (apt-get install debootstrap)")
	}
	dir := filepath.Join(im.Dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Image{}, err
	}
	work, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return Image{}, err
	}
	defer os.RemoveAll(work)
	root := filepath.Join(work, "root")
	mirror := hostMirror()
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include="+strings.Join(rec.Packages, ","), rec.Suite, root, mirror)
	cmd.Stdout, cmd.Stderr = log, log
	fmt.Fprintf(log, "debootstrap %s from %s\n", rec.Suite, mirror)
	if err := cmd.Run(); err != nil {
		return Image{}, fmt.Errorf("container: debootstrap %s from %s: %w (its output is above)", rec.Suite, mirror, err)
	}
	if err := prepareImage(root); err != nil {
		return Image{}, err
	}
	tarball := filepath.Join(work, "image.tar.gz")
	tar := exec.CommandContext(ctx, "tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", root, "-czf", tarball, ".")
	tar.Stderr = log
	if err := tar.Run(); err != nil {
		return Image{}, fmt.Errorf("container: packing image %s: %w", name, err)
	}
	hash, err := fileHash(tarball)
	if err != nil {
		return Image{}, err
	}
	img := Image{Name: name, Hash: hash, Root: filepath.Join(dir, hash), Tarball: filepath.Join(dir, hash+".tar.gz")}
	if _, err := os.Stat(img.Root); err != nil {
		if err := os.Rename(root, img.Root); err != nil {
			return Image{}, err
		}
		if err := os.Rename(tarball, img.Tarball); err != nil {
			return Image{}, err
		}
	}
	if err := providers.WriteFileAtomic(filepath.Join(dir, "current"), []byte(hash+"\n"), 0o644); err != nil {
		return Image{}, err
	}
	return im.image(name, hash)
}

// prepareImage makes a debootstrapped tree a container image: no host
// keys and an empty machine-id (each node gets its own), no hostname,
// systemd-networkd on (nodes get a static address), SSH by key only, and
// no package lists or archives (nodes run apt-get update, as on clouds).
func prepareImage(root string) error {
	keys, _ := filepath.Glob(filepath.Join(root, "etc", "ssh", "ssh_host_*"))
	for _, k := range keys {
		os.Remove(k)
	}
	steps := []error{
		os.WriteFile(filepath.Join(root, "etc", "machine-id"), nil, 0o444),
		os.Remove(filepath.Join(root, "etc", "hostname")),
		os.MkdirAll(filepath.Join(root, "etc", "systemd", "system", "multi-user.target.wants"), 0o755),
		os.Symlink("/lib/systemd/system/systemd-networkd.service",
			filepath.Join(root, "etc", "systemd", "system", "multi-user.target.wants", "systemd-networkd.service")),
		os.WriteFile(filepath.Join(root, "etc", "ssh", "sshd_config.d", "kumo.conf"),
			[]byte("# kumo: keys only\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"), 0o644),
	}
	for _, err := range steps {
		if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("container: preparing the image: %w", err)
		}
	}
	for _, glob := range []string{"var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_*"} {
		files, _ := filepath.Glob(filepath.Join(root, glob))
		for _, f := range files {
			os.Remove(f)
		}
	}
	return nil
}

// hostMirror is the Debian mirror the host's apt uses: the mirrors the
// machine already reaches. $KUMO_DEBIAN_MIRROR overrides it.
func hostMirror() string {
	if m := os.Getenv("KUMO_DEBIAN_MIRROR"); m != "" {
		return m
	}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		if m := mirrorIn(f, true); m != "" {
			return m
		}
	}
	if m := mirrorIn("/etc/apt/sources.list", false); m != "" {
		return m
	}
	return "http://deb.debian.org/debian"
}

// mirrorIn finds the main Debian archive (not security) in an apt
// sources file, deb822 or one-line.
func mirrorIn(path string, deb822 bool) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		var uris []string
		switch {
		case deb822 && len(fields) > 1 && fields[0] == "URIs:":
			uris = fields[1:]
		case !deb822 && len(fields) > 2 && fields[0] == "deb":
			uris = fields[1:2]
			if strings.HasPrefix(uris[0], "[") { // deb [options] uri
				for i, f := range fields {
					if strings.HasSuffix(f, "]") && i+1 < len(fields) {
						uris = fields[i+1 : i+2]
						break
					}
				}
			}
		}
		for _, u := range uris {
			if !strings.Contains(u, "security") {
				return u
			}
		}
	}
	return ""
}

// fileHash names an image by its tarball's content.
func fileHash(path string) (string, error) {
	sum, err := providers.FileSHA256(path)
	if err != nil {
		return "", err
	}
	return sum[:16], nil
}
