package openstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gopenstack "github.com/gophercloud/gophercloud/v2/openstack"

	"github.com/kumo-dev/kumo/providers/openstack/osemu"
	"github.com/kumo-dev/kumo/providers/openstack/realstack"
	"github.com/kumo-dev/kumo/providers/providertest"
)

// The emulator stands in for OpenStack in every other test, so it must
// answer as OpenStack does. This test sends one sequence of requests, the
// ones kumo's provider, gophercloud and the openstack CLI make, to the
// emulator and to a real OpenStack (Debian's, realstack), and compares
// each answer's status and shape: the JSON fields present, with their
// types. A field the real API has and the emulator lacks, or the other
// way round, fails it, but for those listed in emulatorOmits (with why).

// apiTarget is one cloud the sequence runs against.
type apiTarget struct {
	name      string
	compute   string // endpoints as the catalog gives them
	network   string
	image     string
	token     string
	imageName string // an image it has
	tooBig    string // a flavor no host of it has room for
}

func target(t *testing.T, name, authURL, user, password, project, imageName, tooBig string) *apiTarget {
	t.Helper()
	ctx := context.Background()
	pc, err := gopenstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{IdentityEndpoint: authURL, Username: user,
		Password: password, DomainName: "Default", TenantName: project})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	eo := gophercloud.EndpointOpts{Region: "RegionOne"}
	c, err := gopenstack.NewComputeV2(pc, eo)
	if err != nil {
		t.Fatal(err)
	}
	n, err := gopenstack.NewNetworkV2(pc, eo)
	if err != nil {
		t.Fatal(err)
	}
	i, err := gopenstack.NewImageV2(pc, eo)
	if err != nil {
		t.Fatal(err)
	}
	return &apiTarget{name: name, compute: c.Endpoint, network: n.ResourceBase, image: i.ResourceBase, token: pc.Token(),
		imageName: imageName, tooBig: tooBig}
}

// exchange is one request of the sequence and what came back.
type exchange struct {
	step   string
	status int
	shape  map[string]string // JSON path -> type
	body   map[string]any
}

// do sends one request; path may name earlier results as {name}.
func (a *apiTarget) do(t *testing.T, vars map[string]string, step, method, service, path string, body any) exchange {
	t.Helper()
	base := map[string]string{"compute": a.compute, "network": a.network, "image": a.image}[service]
	for k, v := range vars {
		path = strings.ReplaceAll(path, "{"+k+"}", v)
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(fill(body, vars))
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, strings.TrimSuffix(base, "/")+"/"+strings.TrimPrefix(path, "/"), rd)
	req.Header.Set("X-Auth-Token", a.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %s: %v", a.name, step, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	ex := exchange{step: step, status: resp.StatusCode, shape: map[string]string{}}
	if len(bytes.TrimSpace(data)) > 0 {
		var v any
		if json.Unmarshal(data, &v) == nil {
			shapeOf("", v, ex.shape)
			ex.body, _ = v.(map[string]any)
		}
	}
	return ex
}

// fill puts {name} values into a request body.
func fill(body any, vars map[string]string) any {
	b, _ := json.Marshal(body)
	s := string(b)
	for k, v := range vars {
		s = strings.ReplaceAll(s, "{"+k+"}", v)
	}
	var out any
	json.Unmarshal([]byte(s), &out)
	return out
}

// shapeOf records the paths of v with their JSON types; list elements
// share one path (name[]); maps keyed by data (metadata) are one path.
func shapeOf(path string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		out[path] = "object"
		if dataKeyed(path) {
			return
		}
		for k, e := range x {
			shapeOf(strings.TrimPrefix(path+"."+k, "."), e, out)
		}
	case []any:
		out[path] = "array"
		for _, e := range x {
			shapeOf(path+"[]", e, out)
		}
	case string:
		out[path] = "string"
	case float64:
		out[path] = "number"
	case bool:
		out[path] = "bool"
	case nil:
		out[path] = "null"
	}
}

// dataKeyed are objects whose keys are data, not fields.
func dataKeyed(path string) bool {
	for _, suffix := range []string{"metadata", "addresses", "extra_specs", "properties"} {
		if strings.HasSuffix(path, suffix) {
			return true
		}
	}
	return false
}

// emulatorOmits are fields of the real APIs the emulator leaves out, and
// why: none is read by kumo's provider, gophercloud's structs in use or
// the openstack CLI's list and show commands.
var emulatorOmits = []struct {
	path *regexp.Regexp
	why  string
}{
	{regexp.MustCompile(`(^|\.)links(\[\].*)?$`), "hypermedia links: clients build their own URLs"},
}

func omitted(path string) bool {
	for _, o := range emulatorOmits {
		if o.path.MatchString(path) {
			return true
		}
	}
	return false
}

// sequence runs the requests in order against a, waiting where the
// cloud works asynchronously, and returns every compared exchange.
func sequence(t *testing.T, a *apiTarget) []exchange {
	t.Helper()
	vars := map[string]string{"image": a.imageName, "big": a.tooBig, "suffix": fmt.Sprint(time.Now().UnixNano())}
	var out []exchange
	keep := func(ex exchange) exchange { out = append(out, ex); return ex }
	find := func(ex exchange, list, key, want string) string {
		items, _ := ex.body[list].([]any)
		for _, it := range items {
			m, _ := it.(map[string]any)
			if m["name"] == want {
				return fmt.Sprint(m[key])
			}
		}
		t.Fatalf("%s: %s has no %q: %v", a.name, list, want, ex.body)
		return ""
	}
	flavors := keep(a.do(t, vars, "list flavors", "GET", "compute", "flavors/detail", nil))
	vars["flavor"] = find(flavors, "flavors", "id", "m1.small")
	vars["bigflavor"] = find(flavors, "flavors", "id", a.tooBig)
	keep(a.do(t, vars, "show flavor", "GET", "compute", "flavors/{flavor}", nil))
	keep(a.do(t, vars, "flavor extra specs", "GET", "compute", "flavors/{flavor}/os-extra_specs", nil))
	keep(a.do(t, vars, "missing flavor", "GET", "compute", "flavors/no-such-flavor", nil))
	images := keep(a.do(t, vars, "list images by name", "GET", "image", "images?name={image}", nil))
	vars["imageid"] = find(images, "images", "id", a.imageName)
	keep(a.do(t, vars, "show image", "GET", "image", "images/{imageid}", nil))
	keep(a.do(t, vars, "missing image", "GET", "image", "images/00000000-0000-4000-8000-000000000000", nil))
	bigs := keep(a.do(t, vars, "list images by name, a big one", "GET", "image", "images?name="+osemu.BigImage, nil))
	vars["bigimage"] = find(bigs, "images", "id", osemu.BigImage)
	nets := keep(a.do(t, vars, "list networks by name", "GET", "network", "networks?name=private", nil))
	vars["net"] = find(nets, "networks", "id", "private")
	pubs := keep(a.do(t, vars, "list external networks", "GET", "network", "networks?router:external=true", nil))
	vars["public"] = find(pubs, "networks", "id", "public")
	net := keep(a.do(t, vars, "show network", "GET", "network", "networks/{net}", nil))
	if subs, _ := object(net, "network")["subnets"].([]any); len(subs) > 0 {
		vars["subnet"] = fmt.Sprint(subs[0])
		keep(a.do(t, vars, "show subnet", "GET", "network", "subnets/{subnet}", nil))
		keep(a.do(t, vars, "list subnets of the network", "GET", "network", "subnets?network_id={net}", nil))
	}
	keep(a.do(t, vars, "missing network", "GET", "network", "networks/00000000-0000-4000-8000-000000000000", nil))
	keep(a.do(t, vars, "create keypair", "POST", "compute", "os-keypairs", map[string]any{"keypair": map[string]any{"name": "conf-{suffix}", "public_key": providertest.AuthorizedKey(t)}}))
	keep(a.do(t, vars, "list keypairs", "GET", "compute", "os-keypairs", nil))
	sg := keep(a.do(t, vars, "create security group", "POST", "network", "security-groups", map[string]any{"security_group": map[string]any{"name": "conf-{suffix}", "description": "conformance"}}))
	vars["sg"] = idOf(t, a, sg, "security_group")
	keep(a.do(t, vars, "create security group rule", "POST", "network", "security-group-rules", map[string]any{"security_group_rule": map[string]any{
		"security_group_id": "{sg}", "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}}))
	keep(a.do(t, vars, "list security groups by name", "GET", "network", "security-groups?name=conf-{suffix}", nil))

	serverBody := func(flavor, image string) map[string]any {
		return map[string]any{"server": map[string]any{"name": "conf-{suffix}", "flavorRef": flavor, "imageRef": image,
			"networks": []any{map[string]any{"uuid": "{net}"}}, "key_name": "conf-{suffix}",
			"security_groups": []any{map[string]any{"name": "conf-{suffix}"}}, "metadata": map[string]any{"kumo:token": "conf-{suffix}"}}}
	}
	keep(a.do(t, vars, "create server, unknown flavor", "POST", "compute", "servers", serverBody("no-such-flavor", "{imageid}")))
	keep(a.do(t, vars, "create server, unknown image", "POST", "compute", "servers", serverBody("{flavor}", "00000000-0000-4000-8000-000000000000")))
	keep(a.do(t, vars, "create server, image bigger than the flavor's disk", "POST", "compute", "servers", serverBody("{flavor}", "{bigimage}")))
	created := keep(a.do(t, vars, "create server", "POST", "compute", "servers", serverBody("{flavor}", "{imageid}")))
	vars["server"] = idOf(t, a, created, "server")
	a.waitStatus(t, vars, "ACTIVE")
	keep(a.do(t, vars, "show server", "GET", "compute", "servers/{server}", nil))
	keep(a.do(t, vars, "list servers", "GET", "compute", "servers?name=conf-{suffix}", nil))
	keep(a.do(t, vars, "list servers in detail", "GET", "compute", "servers/detail?name=conf-{suffix}", nil))
	ports := keep(a.do(t, vars, "list ports of the server", "GET", "network", "ports?device_id={server}", nil))
	if ps, _ := ports.body["ports"].([]any); len(ps) == 1 {
		vars["port"] = fmt.Sprint(ps[0].(map[string]any)["id"])
		fip := keep(a.do(t, vars, "create floating IP", "POST", "network", "floatingips", map[string]any{"floatingip": map[string]any{"floating_network_id": "{public}"}}))
		vars["fip"] = idOf(t, a, fip, "floatingip")
		keep(a.do(t, vars, "associate floating IP", "PUT", "network", "floatingips/{fip}", map[string]any{"floatingip": map[string]any{"port_id": "{port}"}}))
		keep(a.do(t, vars, "list floating IPs of the port", "GET", "network", "floatingips?port_id={port}", nil))
		keep(a.do(t, vars, "delete floating IP", "DELETE", "network", "floatingips/{fip}", nil))
	} else {
		t.Errorf("%s: the server has %d ports, want 1", a.name, len(ps))
	}
	keep(a.do(t, vars, "stop server", "POST", "compute", "servers/{server}/action", map[string]any{"os-stop": nil}))
	a.waitStatus(t, vars, "SHUTOFF")
	keep(a.do(t, vars, "start server", "POST", "compute", "servers/{server}/action", map[string]any{"os-start": nil}))
	a.waitStatus(t, vars, "ACTIVE")

	big := keep(a.do(t, vars, "create server, no room", "POST", "compute", "servers", serverBody("{bigflavor}", "{imageid}")))
	vars["bigserver"] = idOf(t, a, big, "server")
	bigVars := map[string]string{"server": vars["bigserver"]}
	a.waitStatus(t, bigVars, "ERROR")
	failed := keep(a.do(t, vars, "show server in ERROR", "GET", "compute", "servers/{bigserver}", nil))
	if msg := fmt.Sprint(object(failed, "server")["fault"]); !strings.Contains(msg, "No valid host was found") {
		t.Errorf("%s: the server in ERROR says %s", a.name, msg)
	}
	keep(a.do(t, vars, "list servers in detail, one in ERROR", "GET", "compute", "servers/detail?name=conf-{suffix}", nil))
	keep(a.do(t, vars, "delete server in ERROR", "DELETE", "compute", "servers/{bigserver}", nil))
	keep(a.do(t, vars, "delete server", "DELETE", "compute", "servers/{server}", nil))
	a.waitGone(t, vars["server"])
	a.waitGone(t, vars["bigserver"])
	keep(a.do(t, vars, "show deleted server", "GET", "compute", "servers/{server}", nil))
	keep(a.do(t, vars, "delete security group", "DELETE", "network", "security-groups/{sg}", nil))
	keep(a.do(t, vars, "delete keypair", "DELETE", "compute", "os-keypairs/conf-{suffix}", nil))
	keep(a.do(t, vars, "delete missing keypair", "DELETE", "compute", "os-keypairs/conf-{suffix}", nil))
	return out
}

// object is the object an answer holds under key (empty if none).
func object(ex exchange, key string) map[string]any {
	m, _ := ex.body[key].(map[string]any)
	if m == nil {
		return map[string]any{}
	}
	return m
}

// idOf is the id of what a create made; the sequence cannot go on
// without it.
func idOf(t *testing.T, a *apiTarget, ex exchange, key string) string {
	t.Helper()
	id, ok := object(ex, key)["id"].(string)
	if !ok {
		t.Fatalf("%s: %s: %d %v", a.name, ex.step, ex.status, ex.body)
	}
	return id
}

func (a *apiTarget) waitStatus(t *testing.T, vars map[string]string, status string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ex := a.do(t, vars, "poll", "GET", "compute", "servers/{server}", nil)
		if srv, _ := ex.body["server"].(map[string]any); srv != nil && srv["status"] == status {
			return
		}
	}
	t.Fatalf("%s: server %s never went %s", a.name, vars["server"], status)
}

func (a *apiTarget) waitGone(t *testing.T, id string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if ex := a.do(t, map[string]string{"server": id}, "poll", "GET", "compute", "servers/{server}", nil); ex.status == 404 {
			return
		}
	}
	t.Fatalf("%s: server %s never went away", a.name, id)
}

// compare says how the emulator's answers differ from the real ones.
func compare(real, emu []exchange) []string {
	var diffs []string
	byStep := map[string]exchange{}
	for _, e := range emu {
		byStep[e.step] = e
	}
	for _, r := range real {
		e, ok := byStep[r.step]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s: the emulator's answers did not lead there", r.step))
			continue
		}
		if r.status != e.status {
			diffs = append(diffs, fmt.Sprintf("%s: status %d, the emulator's %d", r.step, r.status, e.status))
			continue
		}
		var missing, extra, types []string
		for p, typ := range r.shape {
			et, ok := e.shape[p]
			switch {
			case !ok && !omitted(p):
				missing = append(missing, p)
			case ok && et != typ && typ != "null" && et != "null":
				types = append(types, fmt.Sprintf("%s is %s, the emulator's %s", p, typ, et))
			}
		}
		for p := range e.shape {
			if _, ok := r.shape[p]; !ok {
				extra = append(extra, p)
			}
		}
		sort.Strings(missing)
		sort.Strings(extra)
		sort.Strings(types)
		if len(missing) > 0 {
			diffs = append(diffs, fmt.Sprintf("%s: the emulator lacks %s", r.step, strings.Join(missing, ", ")))
		}
		if len(extra) > 0 {
			diffs = append(diffs, fmt.Sprintf("%s: the emulator adds %s", r.step, strings.Join(extra, ", ")))
		}
		if len(types) > 0 {
			diffs = append(diffs, fmt.Sprintf("%s: %s", r.step, strings.Join(types, "; ")))
		}
	}
	return diffs
}

func bodies(exs []exchange) []map[string]any {
	var out []map[string]any
	for _, e := range exs {
		out = append(out, map[string]any{"step": e.step, "status": e.status, "body": e.body})
	}
	return out
}

func TestEmulatorAnswersAsRealOpenStack(t *testing.T) {
	cloud := realCloud(t)
	_, spec := emulator(t, osemu.Options{APIOnly: true, Capacity: map[string]int{"m1.xlarge": 0}})
	real := target(t, "OpenStack", cloud.AuthURL, "admin", cloud.Password, "admin", cloud.Image, "m1.huge")
	em := target(t, "the emulator", spec["auth_url"].(string), osemu.User, osemu.Password, osemu.Project, "ubuntu-22.04", "m1.xlarge")
	realEx, emuEx := sequence(t, real), sequence(t, em)
	if dir := os.Getenv("KUMO_CONFORMANCE_DUMP"); dir != "" {
		// The bodies both gave, for whoever fixes a difference.
		for name, exs := range map[string][]exchange{"real": realEx, "emulator": emuEx} {
			b, _ := json.MarshalIndent(bodies(exs), "", "  ")
			os.WriteFile(dir+"/"+name+".json", b, 0o644)
		}
	}
	diffs := compare(realEx, emuEx)
	for _, d := range diffs {
		t.Error(d)
	}
}

var (
	cloudOnce sync.Once
	cloud     *realstack.Cloud
	cloudErr  error
)

// realCloud is the real OpenStack of this test process, started on
// first use and stopped by TestMain; the tests that need it skip unless
// KUMO_REAL_OPENSTACK is set (make test-openstack sets it).
func realCloud(t testing.TB) *realstack.Cloud {
	t.Helper()
	if os.Getenv("KUMO_REAL_OPENSTACK") == "" {
		t.Skip("a real OpenStack starts in make test-openstack (KUMO_REAL_OPENSTACK=1)")
	}
	cloudOnce.Do(func() {
		if dir := os.Getenv("KUMO_REALSTACK_DIR"); dir != "" {
			cloud, cloudErr = realstack.Attach(dir) // a cloud kept up by hand
			return
		}
		dir, err := os.MkdirTemp("", "kumo-realstack-")
		if err != nil {
			cloudErr = err
			return
		}
		cloud, cloudErr = realstack.Start(context.Background(), realstack.Options{Dir: dir, Log: os.Stderr})
	})
	if cloudErr != nil {
		t.Fatal(cloudErr)
	}
	return cloud
}
