// Command cloudscale measures how unit creation scales on the cloud
// providers: it creates 1, 10 and 100 nodes through kumo's EC2 and
// OpenStack emulators, with 300 ms added to every API call and the
// emulators enforcing request-rate limits, and reports wall(N)/wall(1).
// With -api-only the emulators' instances have no nodes behind them
// (create_unit(..., wait_ssh = False)), so the API path alone is measured
// at any size: make bench-cloud1000 creates and deletes 1,000 instances
// with 100 ms per call, and reports the API calls by kind (a poll round
// is one List, whatever the number of nodes) and kumo's peak RSS.
//
//	make build && go run ./bench/cloudscale [-latency 300ms] [-sizes 1,10,100] [-api-only] [-kumo bin/kumo]
//
// It ends with one line:
// RESULT aws_1_s=… aws_10_s=… aws_100_s=… aws_ratio=… openstack_1_s=… … openstack_ratio=… throttled=…
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kumo-dev/kumo/bench/benchkit"
	"github.com/kumo-dev/kumo/providers/aws/ec2emu"
	"github.com/kumo-dev/kumo/providers/emulate"
	"github.com/kumo-dev/kumo/providers/openstack/osemu"
)

func main() {
	latency := flag.Duration("latency", 300*time.Millisecond, "delay added to every API call")
	sizesFlag := flag.String("sizes", "1,10,100", "unit sizes to create")
	kumo := flag.String("kumo", "bin/kumo", "the kumo binary")
	rate := flag.Float64("rate", 20, "API requests per second the emulators allow (sustained)")
	burst := flag.Float64("burst", 100, "API requests the emulators allow at once")
	apiOnly := flag.Bool("api-only", false, "instances without nodes behind them; kumo does not wait for SSH")
	flag.Parse()
	var sizes []int
	for _, s := range strings.Split(*sizesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fmt.Fprintln(os.Stderr, "cloudscale: bad -sizes:", err)
			os.Exit(2)
		}
		sizes = append(sizes, n)
	}
	if err := run(*kumo, *latency, *rate, *burst, sizes, *apiOnly); err != nil {
		fmt.Fprintln(os.Stderr, "cloudscale:", err)
		os.Exit(1)
	}
}

type emulator interface {
	Throttled() int64
	Calls() map[string]int64
	Shutdown()
}

func run(kumo string, latency time.Duration, rate, burst float64, sizes []int, apiOnly bool) error {
	kumo, err := filepath.Abs(kumo)
	if err != nil {
		return err
	}
	if _, err := os.Stat(kumo); err != nil {
		return fmt.Errorf("%s: %v (make build)", kumo, err)
	}
	mode := "instances are local nodes"
	if apiOnly {
		mode = "API only: instances without nodes"
	}
	fmt.Printf("creating units of %v nodes (%s); every API call takes %s more; limits %.0f/s, burst %.0f\n\n", sizes, mode, latency, rate, burst)
	fmt.Printf("| %-9s | %5s | %8s | %12s | %9s | %9s | %9s | %8s |\n", "cloud", "nodes", "wall s", "ratio to 1", "throttled", "delete s", "kumo MB", "calls")
	// throttled: requests the emulator refused for the rate limit while the unit was created.
	fmt.Printf("|%s|%s|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 11), strings.Repeat("-", 7), strings.Repeat("-", 10), strings.Repeat("-", 14), strings.Repeat("-", 11), strings.Repeat("-", 11), strings.Repeat("-", 11), strings.Repeat("-", 10))
	var callLines []string
	var peakRSS int64
	result := []string{}
	var throttled int64
	for _, cloud := range []string{"aws", "openstack"} {
		dir, err := os.MkdirTemp("", "kumo-cloudscale-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var emu emulator
		var env []string
		var specCall string
		node := []string{kumo, "node-server"}
		faults := emulate.Faults{Latency: latency, RatePerSecond: rate, Burst: burst}
		switch cloud {
		case "aws":
			e := ec2emu.New(ec2emu.Options{Dir: filepath.Join(dir, "emu"), Faults: faults, LocalServer: node, APIOnly: apiOnly})
			url, err := e.Listen(ctx, "127.0.0.1:0")
			if err != nil {
				return err
			}
			emu = e
			env = []string{"AWS_ENDPOINT_URL_EC2=" + url, "AWS_ACCESS_KEY_ID=" + ec2emu.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + ec2emu.AccessKeyID, "AWS_REGION=us-east-1",
				"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent"}
			specCall = `spec("aws", "small")`
		case "openstack":
			e := osemu.New(osemu.Options{Dir: filepath.Join(dir, "emu"), Faults: faults, LocalServer: node, APIOnly: apiOnly})
			url, err := e.Listen(ctx, "127.0.0.1:0")
			if err != nil {
				return err
			}
			emu = e
			env = []string{"OS_AUTH_URL=" + url, "OS_USERNAME=" + osemu.User, "OS_PASSWORD=" + osemu.Password, "OS_PROJECT_NAME=" + osemu.Project,
				"OS_DOMAIN_NAME=" + osemu.Domain, "OS_REGION_NAME=" + osemu.Region, "OS_CLOUD="}
			specCall = `spec("openstack", "small")`
		}
		wait := ""
		if apiOnly {
			wait = ", wait_ssh = False"
		}
		recipe := "# %% [parameters]\nnodes = 1\n# %% Create\nunit_group(\"scale\").create_unit(\"u\", " + specCall + ", nodes = nodes" + wait + ")\n"
		if err := os.WriteFile(filepath.Join(dir, "scale.star"), []byte(recipe), 0o644); err != nil {
			return err
		}
		walls := map[int]float64{}
		for _, n := range sizes {
			name := fmt.Sprintf("scale%d", n)
			// The budget is the account's, not the process's: let the
			// emulator's bucket refill after the previous phase.
			time.Sleep(time.Duration(burst / rate * float64(time.Second)))
			before, callsBefore := emu.Throttled(), emu.Calls()
			out, rss, err := benchkit.KumoRSS(kumo, dir, env, "run", "scale.star", "--name", name, "-p", fmt.Sprintf("nodes=%d", n), "--json")
			if err != nil {
				emu.Shutdown()
				return fmt.Errorf("%s, %d nodes: %w", cloud, n, err)
			}
			wall, ok := benchkit.RanCells(out)["Create"]
			if !ok {
				emu.Shutdown()
				return fmt.Errorf("no Create cell in the output: %s", out)
			}
			walls[n] = wall.Seconds()
			createThrottled := emu.Throttled() - before
			throttled += createThrottled
			callsMade := emu.Calls()
			time.Sleep(time.Duration(burst / rate * float64(time.Second)))
			start := time.Now()
			_, drss, err := benchkit.KumoRSS(kumo, dir, env, "destroy", "--name", name, "--yes")
			if err != nil {
				emu.Shutdown()
				return fmt.Errorf("%s: destroy: %w", cloud, err)
			}
			deleteWall := time.Since(start).Seconds()
			peakRSS = max(peakRSS, rss, drss)
			var total int64
			var kinds []string
			for k, v := range callsMade {
				if d := v - callsBefore[k]; d > 0 {
					total += d
					kinds = append(kinds, fmt.Sprintf("%s %d", k, d))
				}
			}
			sortStrings(kinds)
			callLines = append(callLines, fmt.Sprintf("%s, %d nodes, create: %s", cloud, n, strings.Join(kinds, ", ")))
			fmt.Printf("| %-9s | %5d | %8.2f | %12.2f | %9d | %9.2f | %9d | %8d |\n", cloud, n, walls[n], walls[n]/walls[sizes[0]], createThrottled, deleteWall, max(rss, drss)>>20, total)
			var deleteKinds []string
			for k, v := range emu.Calls() {
				if d := v - callsMade[k]; d > 0 {
					deleteKinds = append(deleteKinds, fmt.Sprintf("%s %d", k, d))
				}
			}
			sortStrings(deleteKinds)
			callLines = append(callLines, fmt.Sprintf("%s, %d nodes, destroy: %s", cloud, n, strings.Join(deleteKinds, ", ")))
			result = append(result, fmt.Sprintf("%s_%d_s=%.2f %s_%d_delete_s=%.2f", cloud, n, walls[n], cloud, n, deleteWall))
		}
		last := sizes[len(sizes)-1]
		result = append(result, fmt.Sprintf("%s_ratio=%.2f", cloud, walls[last]/walls[sizes[0]]))
		emu.Shutdown()
		cancel()
	}
	fmt.Printf("\nAPI calls while creating (the emulator's count):\n  %s\n", strings.Join(callLines, "\n  "))
	fmt.Printf("\nRESULT %s throttled=%d kumo_peak_rss_mb=%d\n", strings.Join(result, " "), throttled, peakRSS>>20)
	return nil
}

func sortStrings(s []string) { sort.Strings(s) }
