// Command containers measures the container provider on this host: how
// long `kumo image build` takes, how long a unit of 1, 5 and 10 nodes
// takes from create to every node answering SSH (and wall(10)/wall(1)),
// and what an idle node costs in memory (its cgroup) and disk (its
// overlay upper layer). It needs root, systemd-nspawn, debootstrap and
// nftables (make test-deps).
//
//	make build && go run ./bench/containers [-sizes 1,5,10] [-build=false] [-kumo bin/kumo]
//
// It ends with one line:
// RESULT image_build_s=… create_1_s=… create_5_s=… create_10_s=… ratio_10_1=… idle_mem_mib=… disk_kib=…
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kumo-dev/kumo/bench/benchkit"
)

func main() {
	kumo := flag.String("kumo", "bin/kumo", "the kumo binary")
	sizesFlag := flag.String("sizes", "1,5,10", "unit sizes to create")
	build := flag.Bool("build", true, "time a fresh image build (about a minute) instead of using the cached image")
	settle := flag.Duration("settle", 15*time.Second, "how long nodes idle before their memory is read")
	flag.Parse()
	var sizes []int
	for _, s := range strings.Split(*sizesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "containers: bad -sizes:", s)
			os.Exit(2)
		}
		sizes = append(sizes, n)
	}
	if err := run(*kumo, sizes, *build, *settle); err != nil {
		fmt.Fprintln(os.Stderr, "containers:", err)
		os.Exit(1)
	}
}

func run(kumo string, sizes []int, build bool, settle time.Duration) error {
	kumo, err := filepath.Abs(kumo)
	if err != nil {
		return err
	}
	if _, err := os.Stat(kumo); err != nil {
		return fmt.Errorf("%s: %v (make build)", kumo, err)
	}
	dir, err := os.MkdirTemp("", "kumo-containers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var env []string
	result := []string{}

	if build {
		images := filepath.Join(dir, "images")
		env = append(env, "KUMO_IMAGES="+images)
		start := time.Now()
		if _, err := benchkit.Kumo(kumo, dir, env, "image", "build", "-q"); err != nil {
			return err
		}
		wall := time.Since(start)
		size := tarballSize(images)
		fmt.Printf("image build: %.1f s, tarball %.1f MB\n\n", wall.Seconds(), float64(size)/1e6)
		result = append(result, fmt.Sprintf("image_build_s=%.1f", wall.Seconds()))
	}

	recipe := "# %% [parameters]\nnodes = 1\n# %% Create\nunit_group(\"bench\").create_unit(\"n\", spec(\"container\", \"small\"), nodes = nodes)\n"
	if err := os.WriteFile(filepath.Join(dir, "bench.star"), []byte(recipe), 0o644); err != nil {
		return err
	}
	var runs []string
	defer func() {
		for _, name := range runs {
			if _, err := benchkit.Kumo(kumo, dir, env, "destroy", "--name", name, "--yes"); err != nil {
				fmt.Fprintln(os.Stderr, "containers: cleaning up:", err)
			}
		}
	}()
	fmt.Printf("| %5s | %15s | %12s |\n", "nodes", "create-to-SSH s", "ratio to 1")
	fmt.Printf("|%s|%s|%s|\n", strings.Repeat("-", 7), strings.Repeat("-", 17), strings.Repeat("-", 14))
	walls := map[int]float64{}
	for _, n := range sizes {
		name := fmt.Sprintf("bench%d", n)
		runs = append(runs, name)
		out, err := benchkit.Kumo(kumo, dir, env, "run", "bench.star", "--name", name, "-p", fmt.Sprintf("nodes=%d", n), "--json")
		if err != nil {
			return fmt.Errorf("%d nodes: %w", n, err)
		}
		wall, ok := benchkit.RanCells(out)["Create"]
		if !ok {
			return fmt.Errorf("%d nodes: the Create cell did not run", n)
		}
		walls[n] = wall.Seconds()
		fmt.Printf("| %5d | %15.2f | %12.2f |\n", n, wall.Seconds(), wall.Seconds()/walls[sizes[0]])
		result = append(result, fmt.Sprintf("create_%d_s=%.2f", n, wall.Seconds()))
	}
	if first, last := sizes[0], sizes[len(sizes)-1]; len(sizes) > 1 {
		result = append(result, fmt.Sprintf("ratio_%d_%d=%.2f", last, first, walls[last]/walls[first]))
	}

	// Every node made above idles a while, then its cgroup and upper
	// layer say what it costs.
	time.Sleep(settle)
	nodes, err := filepath.Glob(filepath.Join(dir, ".kumo", "container", "nodes", "*", "meta.json"))
	if err != nil || len(nodes) == 0 {
		return fmt.Errorf("no container nodes under %s", dir)
	}
	var mem, rss, disk, journal []int64
	for _, m := range nodes {
		var meta struct{ Machine string }
		b, err := os.ReadFile(m)
		if err != nil || json.Unmarshal(b, &meta) != nil {
			return fmt.Errorf("%s: unreadable", m)
		}
		usage, resident, err := memoryOf(meta.Machine)
		if err != nil {
			return err
		}
		mem, rss = append(mem, usage), append(rss, resident)
		upper := filepath.Join(filepath.Dir(m), "upper")
		d, err := diskOf(upper)
		if err != nil {
			return err
		}
		// journald allocates its file 8 MiB at a time: most of an idle
		// node's disk, so it is shown on its own.
		j, _ := diskOf(filepath.Join(upper, "var", "log", "journal"))
		disk, journal = append(disk, d), append(journal, j)
	}
	fmt.Printf("\n%d idle nodes after %s: memory (cgroup, page cache included) median %.1f MiB, resident %.1f MiB; upper layer median %d KiB, of which the journal %d KiB\n",
		len(nodes), settle, mib(median(mem)), mib(median(rss)), median(disk)/1024, median(journal)/1024)
	result = append(result, fmt.Sprintf("idle_mem_mib=%.1f idle_rss_mib=%.1f disk_kib=%d", mib(median(mem)), mib(median(rss)), median(disk)/1024))
	fmt.Println("RESULT " + strings.Join(result, " "))
	return nil
}

// memoryOf reads a node's memory cgroup: all it charges (page cache
// included) and what is resident (anonymous memory).
func memoryOf(machine string) (usage, resident int64, err error) {
	v1 := filepath.Join("/sys/fs/cgroup/memory/kumo", machine)
	if b, err := os.ReadFile(filepath.Join(v1, "memory.usage_in_bytes")); err == nil {
		usage, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return usage, statField(filepath.Join(v1, "memory.stat"), "total_rss"), nil
	}
	v2 := filepath.Join("/sys/fs/cgroup/kumo", machine)
	b, err := os.ReadFile(filepath.Join(v2, "memory.current"))
	if err != nil {
		return 0, 0, fmt.Errorf("no memory cgroup for %s: %v", machine, err)
	}
	usage, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return usage, statField(filepath.Join(v2, "memory.stat"), "anon"), nil
}

func statField(path, field string) int64 {
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == field {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// diskOf is what du counts for a folder, in bytes.
func diskOf(dir string) (int64, error) {
	out, err := exec.Command("du", "-s", "-B1", dir).Output()
	if err != nil {
		return 0, fmt.Errorf("du %s: %v", dir, err)
	}
	return strconv.ParseInt(strings.Fields(string(out))[0], 10, 64)
}

// tarballSize is the size of the image tarballs under dir.
func tarballSize(dir string) int64 {
	tarballs, _ := filepath.Glob(filepath.Join(dir, "*", "*.tar.gz"))
	var size int64
	for _, t := range tarballs {
		if info, err := os.Stat(t); err == nil {
			size += info.Size()
		}
	}
	return size
}

func median(xs []int64) int64 {
	sort.Slice(xs, func(i, j int) bool { return xs[i] < xs[j] })
	return xs[len(xs)/2]
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
