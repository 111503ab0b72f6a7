package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Every node has cgroups of its own, made by kumo under a "kumo" parent
// before systemd-nspawn starts (with --keep-unit it stays where it is
// started, and with no systemd on the host nobody else would make them):
// the flavor's limits apply to the node alone, and nodes never share a
// cgroup, which would make them hang at shutdown.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupV1Controllers are the hierarchies of a v1 host a node gets a
// cgroup in: systemd's own (name=systemd), the limited resources, freezer
// (to stop everything of a node at once) and, on a hybrid host, the
// cgroup2 tree at /sys/fs/cgroup/unified, where the node's systemd tracks
// its services: nodes sharing a cgroup there fail their units at random
// (219/CGROUP, EIO) as each one's systemd manages the same subtree.
var cgroupV1Controllers = []string{"systemd", "unified", "memory", "cpu", "cpuacct", "pids", "blkio", "freezer"}

// unified reports whether the host uses cgroup v2 alone.
func unified() bool {
	_, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers"))
	return err == nil
}

// A limit is what a flavor gives a node.
type limits struct {
	MemoryBytes int64
	CPUs        float64
	Pids        int
}

// cgroupDirs are the node's cgroup folders, one per hierarchy (one on v2).
func cgroupDirs(machine string) []string {
	if unified() {
		return []string{filepath.Join(cgroupRoot, "kumo", machine)}
	}
	var out []string
	for _, c := range cgroupV1Controllers {
		base := filepath.Join(cgroupRoot, c)
		if _, err := os.Stat(filepath.Join(base, "cgroup.procs")); err == nil {
			out = append(out, filepath.Join(base, "kumo", machine))
		}
	}
	return out
}

// makeCgroups creates the node's cgroups and sets its limits. It returns
// the cgroup.procs files the starting process writes its pid to.
func makeCgroups(machine string, l limits) ([]string, error) {
	if unified() {
		// The parents must hand the controllers down.
		for _, d := range []string{cgroupRoot, filepath.Join(cgroupRoot, "kumo")} {
			os.MkdirAll(d, 0o755)
			os.WriteFile(filepath.Join(d, "cgroup.subtree_control"), []byte("+memory +cpu +pids"), 0o644)
		}
	}
	var procs []string
	for _, d := range cgroupDirs(machine) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("container: cgroup %s: %w", d, err)
		}
		procs = append(procs, filepath.Join(d, "cgroup.procs"))
	}
	set := func(file, value string) error {
		for _, d := range cgroupDirs(machine) {
			p := filepath.Join(d, file)
			if _, err := os.Stat(p); err == nil {
				if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
					return fmt.Errorf("container: setting %s: %w", p, err)
				}
			}
		}
		return nil
	}
	var errs []error
	if unified() {
		if l.MemoryBytes > 0 {
			errs = append(errs, set("memory.max", strconv.FormatInt(l.MemoryBytes, 10)))
		}
		if l.CPUs > 0 {
			errs = append(errs, set("cpu.max", fmt.Sprintf("%d 100000", int(l.CPUs*100000))))
		}
		if l.Pids > 0 {
			errs = append(errs, set("pids.max", strconv.Itoa(l.Pids)))
		}
	} else {
		if l.MemoryBytes > 0 {
			errs = append(errs, set("memory.limit_in_bytes", strconv.FormatInt(l.MemoryBytes, 10)))
		}
		if l.CPUs > 0 {
			errs = append(errs, set("cpu.cfs_period_us", "100000"), set("cpu.cfs_quota_us", strconv.Itoa(int(l.CPUs*100000))))
		}
		if l.Pids > 0 {
			errs = append(errs, set("pids.max", strconv.Itoa(l.Pids)))
		}
	}
	return procs, errors.Join(errs...)
}

// cgroupPids lists the processes in the node's cgroups, those of the
// cgroups its systemd made inside them included.
func cgroupPids(machine string) []int {
	seen := map[int]bool{}
	var out []int
	for _, d := range cgroupDirs(machine) {
		filepath.WalkDir(d, func(path string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || e.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(path)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
					seen[pid] = true
					out = append(out, pid)
				}
			}
			return nil
		})
	}
	return out
}

// killCgroups kills every process left in the node's cgroups and removes
// them. The freezer (or cgroup.freeze on v2) holds the processes still
// while they are killed, so that none forks away.
func killCgroups(machine string) error {
	freeze := func(on bool) {
		for _, d := range cgroupDirs(machine) {
			if unified() {
				v := "0"
				if on {
					v = "1"
				}
				os.WriteFile(filepath.Join(d, "cgroup.freeze"), []byte(v), 0o644)
			} else if strings.Contains(d, "/freezer/") {
				v := "THAWED"
				if on {
					v = "FROZEN"
				}
				os.WriteFile(filepath.Join(d, "freezer.state"), []byte(v), 0o644)
			}
		}
	}
	for round := 0; round < 100; round++ {
		pids := cgroupPids(machine)
		if len(pids) == 0 {
			break
		}
		freeze(true)
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		freeze(false) // a frozen process cannot die
		time.Sleep(20 * time.Millisecond)
	}
	var errs []error
	for _, d := range cgroupDirs(machine) {
		if err := removeCgroup(d); err != nil {
			errs = append(errs, fmt.Errorf("container: removing cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// removeCgroup removes a cgroup and the ones the node's own systemd made
// inside it (init.scope, system.slice...), deepest first: a cgroup with
// children cannot be removed.
func removeCgroup(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroup(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// cgroupMemoryLimit reads the memory limit of the node's cgroup (tests,
// kumo's own checks).
func cgroupMemoryLimit(machine string) (int64, error) {
	for _, d := range cgroupDirs(machine) {
		for _, f := range []string{"memory.limit_in_bytes", "memory.max"} {
			if b, err := os.ReadFile(filepath.Join(d, f)); err == nil {
				return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("container: no memory cgroup for %s", machine)
}
