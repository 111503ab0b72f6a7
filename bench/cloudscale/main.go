// Command cloudscale measures how unit creation scales on the cloud
// providers: it creates 1, 10 and 100 nodes through kumo's EC2 and
// OpenStack emulators, with 300 ms added to every API call and the
// emulators enforcing request-rate limits, and reports wall(N)/wall(1).
//
//	make build && go run ./bench/cloudscale [-latency 300ms] [-sizes 1,10,100] [-kumo bin/kumo]
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
	if err := run(*kumo, *latency, *rate, *burst, sizes); err != nil {
		fmt.Fprintln(os.Stderr, "cloudscale:", err)
		os.Exit(1)
	}
}

type emulator interface {
	Throttled() int64
	Shutdown()
}

func run(kumo string, latency time.Duration, rate, burst float64, sizes []int) error {
	kumo, err := filepath.Abs(kumo)
	if err != nil {
		return err
	}
	if _, err := os.Stat(kumo); err != nil {
		return fmt.Errorf("%s: %v (make build)", kumo, err)
	}
	fmt.Printf("creating units of %v nodes; every API call takes %s more; limits %.0f/s, burst %.0f\n\n", sizes, latency, rate, burst)
	fmt.Printf("| %-9s | %5s | %8s | %12s | %9s |\n", "cloud", "nodes", "wall s", "ratio to 1", "throttled")
	// throttled: requests the emulator refused for the rate limit while the unit was created.
	fmt.Printf("|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 11), strings.Repeat("-", 7), strings.Repeat("-", 10), strings.Repeat("-", 14), strings.Repeat("-", 11))
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
			e := ec2emu.New(ec2emu.Options{Dir: filepath.Join(dir, "emu"), Faults: faults, LocalServer: node})
			url, err := e.Listen(ctx, "127.0.0.1:0")
			if err != nil {
				return err
			}
			emu = e
			env = []string{"AWS_ENDPOINT_URL_EC2=" + url, "AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench", "AWS_REGION=us-east-1",
				"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent"}
			specCall = `spec("aws", "small")`
		case "openstack":
			e := osemu.New(osemu.Options{Dir: filepath.Join(dir, "emu"), Faults: faults, LocalServer: node})
			url, err := e.Listen(ctx, "127.0.0.1:0")
			if err != nil {
				return err
			}
			emu = e
			env = []string{"OS_AUTH_URL=" + url, "OS_USERNAME=" + osemu.User, "OS_PASSWORD=" + osemu.Password, "OS_PROJECT_NAME=" + osemu.Project,
				"OS_DOMAIN_NAME=" + osemu.Domain, "OS_REGION_NAME=" + osemu.Region, "OS_CLOUD="}
			specCall = `spec("openstack", "small")`
		}
		recipe := "# %% [parameters]\nnodes = 1\n# %% Create\nunit_group(\"scale\").create_unit(\"u\", " + specCall + ", nodes = nodes)\n"
		if err := os.WriteFile(filepath.Join(dir, "scale.star"), []byte(recipe), 0o644); err != nil {
			return err
		}
		walls := map[int]float64{}
		for _, n := range sizes {
			name := fmt.Sprintf("scale%d", n)
			// The budget is the account's, not the process's: let the
			// emulator's bucket refill after the previous phase.
			time.Sleep(time.Duration(burst / rate * float64(time.Second)))
			before := emu.Throttled()
			out, err := benchkit.Kumo(kumo, dir, env, "run", "scale.star", "--name", name, "-p", fmt.Sprintf("nodes=%d", n), "--json")
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
			time.Sleep(time.Duration(burst / rate * float64(time.Second)))
			if _, err := benchkit.Kumo(kumo, dir, env, "destroy", "--name", name, "--yes"); err != nil {
				emu.Shutdown()
				return fmt.Errorf("%s: destroy: %w", cloud, err)
			}
			fmt.Printf("| %-9s | %5d | %8.2f | %12.2f | %9d |\n", cloud, n, walls[n], walls[n]/walls[sizes[0]], createThrottled)
			result = append(result, fmt.Sprintf("%s_%d_s=%.2f", cloud, n, walls[n]))
		}
		last := sizes[len(sizes)-1]
		result = append(result, fmt.Sprintf("%s_ratio=%.2f", cloud, walls[last]/walls[sizes[0]]))
		emu.Shutdown()
		cancel()
	}
	fmt.Printf("\nRESULT %s throttled=%d\n", strings.Join(result, " "), throttled)
	return nil
}
