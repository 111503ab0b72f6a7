// Package onprem is the provider for a pool of existing servers, like
// VCP's on-premises provider: hosts are listed in a YAML inventory,
// create_unit allocates free hosts whose labels match the flavor, and
// deleting a node returns its host to the pool. Allocations live in the
// state, so two runs never get the same host.
package onprem

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/state"
)

// Allocator keeps allocations; *state.Store is one.
type Allocator interface {
	Allocate(a state.Allocation) (bool, error)
	Allocated(token string) (state.Allocation, bool, error)
	AllocationOf(host string) (state.Allocation, bool, error)
	Allocations(run string) ([]state.Allocation, error)
	Release(host string) error
}

// Provider allocates hosts of inventories.
type Provider struct {
	alloc Allocator
	mu    sync.Mutex      // one allocation at a time in this process; the state's key guards across processes
	inUse map[string]bool // hosts taken as last read, with this process's allocations since (under mu)

	cacheMu sync.Mutex
	cache   map[string]cachedInventory // by path
}

// cachedInventory is an inventory as parsed, and the file it was parsed
// from: parsed again only once the file changes.
type cachedInventory struct {
	inv      *Inventory
	size     int64
	modified time.Time
}

// inventory is the inventory at path, parsed once per version of the
// file: a pool of 1,000 hosts is not read again for every node.
func (p *Provider) inventory(path string) (*Inventory, error) {
	st, statErr := os.Stat(path)
	if statErr != nil {
		if _, err := LoadInventory(path); err != nil {
			return nil, err // it says what is wrong, as reading does
		}
		return nil, providers.BadInputf("onprem inventory %s: %w", path, statErr)
	}
	p.cacheMu.Lock()
	defer p.cacheMu.Unlock()
	if c, ok := p.cache[path]; ok && c.size == st.Size() && c.modified.Equal(st.ModTime()) {
		return c.inv, nil
	}
	inv, err := LoadInventory(path)
	if err != nil {
		return nil, err
	}
	if p.cache == nil {
		p.cache = map[string]cachedInventory{}
	}
	p.cache[path] = cachedInventory{inv: inv, size: st.Size(), modified: st.ModTime()}
	return inv, nil
}

// taken is the set of hosts allocated now, to any run.
func (p *Provider) taken() (map[string]bool, error) {
	all, err := p.alloc.Allocations("")
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(all))
	for _, a := range all {
		out[a.Host] = true
	}
	return out, nil
}

// New returns the provider keeping allocations in alloc.
func New(alloc Allocator) *Provider { return &Provider{alloc: alloc} }

func (p *Provider) Name() string { return "onprem" }

// Spec is an onprem spec's fields.
type Spec struct {
	Inventory string            `json:"inventory"` // the inventory file (see InventoryPath)
	Labels    map[string]string `json:"labels"`    // labels every host must carry besides the flavor
	User      string            `json:"user"`      // the login user, else each host's own
}

func (p *Provider) NewSpec() any { return &Spec{} }

func specOf(fields map[string]any) (Spec, error) { return providers.ReadSpec[Spec]("onprem", fields) }

// Locate records the inventory the spec's hosts come from, so that
// destroy releases them from any shell ($KUMO_ONPREM_INVENTORY unset).
func (p *Provider) Locate(fields map[string]any) map[string]any {
	s, _ := specOf(fields)
	if s.Inventory != "" && filepath.IsAbs(expandHome(s.Inventory)) {
		return nil
	}
	path, err := filepath.Abs(s.InventoryPath())
	if err != nil {
		return nil
	}
	return map[string]any{"inventory": path}
}

// Host is one inventory entry.
type Host struct {
	Name     string            `yaml:"name"`
	Address  string            `yaml:"address"`
	Port     int               `yaml:"port"`
	User     string            `yaml:"user"`
	Key      string            `yaml:"key"`
	Jump     string            `yaml:"jump"`
	Labels   map[string]string `yaml:"labels"`
	PowerOff string            `yaml:"power_off"` // local commands that power the host off and on
	PowerOn  string            `yaml:"power_on"`
}

// ID identifies the machine, whatever inventory names it: address:port.
func (h *Host) ID() string { return net.JoinHostPort(h.Address, strconv.Itoa(h.Port)) }

// Inventory is a parsed inventory file.
type Inventory struct {
	Path  string
	Hosts []*Host `yaml:"hosts"`

	ids     map[string]*Host // by ID, as ParseInventory checked them
	mu      sync.Mutex
	matched map[string][]*Host // see matching
}

// InventoryPath is where the inventory is read from: the spec's
// inventory field, else $KUMO_ONPREM_INVENTORY, else
// ~/.config/kumo/onprem.yaml.
func (s Spec) InventoryPath() string {
	if s.Inventory != "" {
		return expandHome(s.Inventory)
	}
	if p := os.Getenv("KUMO_ONPREM_INVENTORY"); p != "" {
		return expandHome(p)
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".config", "kumo", "onprem.yaml")
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

// LoadInventory reads and checks an inventory file.
func LoadInventory(path string) (*Inventory, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, providers.BadInputf("onprem inventory: %w (give spec(\"onprem\", flavor, inventory=PATH) or set KUMO_ONPREM_INVENTORY)", err)
	}
	return ParseInventory(path, b)
}

// ParseInventory reads and checks the inventory text b, read from path.
func ParseInventory(path string, b []byte) (*Inventory, error) {
	inv := &Inventory{Path: path}
	if err := yaml.Unmarshal(b, inv); err != nil {
		return nil, providers.BadInputf("onprem inventory %s: %w", path, err)
	}
	names, ids := map[string]*Host{}, map[string]*Host{}
	for i, h := range inv.Hosts {
		switch {
		case h == nil:
			return nil, providers.BadInputf("onprem inventory %s: host #%d is empty", path, i+1)
		case h.Name == "":
			return nil, providers.BadInputf("onprem inventory %s: host #%d has no name", path, i+1)
		case h.Address == "":
			return nil, providers.BadInputf("onprem inventory %s: host %s has no address", path, h.Name)
		case names[h.Name] != nil:
			return nil, providers.BadInputf("onprem inventory %s: two hosts are named %s", path, h.Name)
		case h.Port < 0 || h.Port > 65535:
			return nil, providers.BadInputf("onprem inventory %s: host %s has port %d; want 1 to 65535", path, h.Name, h.Port)
		}
		if h.Port == 0 {
			h.Port = 22
		}
		if h.User == "" {
			h.User = currentUser()
		}
		h.Key = expandHome(h.Key)
		if other := ids[h.ID()]; other != nil {
			return nil, providers.BadInputf("onprem inventory %s: hosts %s and %s are both %s; list each host once", path, other.Name, h.Name, h.ID())
		}
		names[h.Name], ids[h.ID()] = h, h
	}
	inv.ids = ids
	for _, h := range inv.Hosts {
		if h.Jump == "" {
			continue
		}
		switch j := names[h.Jump]; {
		case j == nil:
			return nil, providers.BadInputf("onprem inventory %s: host %s jumps through %s, which is not in the inventory", path, h.Name, h.Jump)
		case j == h:
			return nil, providers.BadInputf("onprem inventory %s: host %s jumps through itself", path, h.Name)
		case j.Jump != "":
			return nil, providers.BadInputf("onprem inventory %s: host %s jumps through %s, which jumps through %s: kumo takes one jump host", path, h.Name, j.Name, j.Jump)
		}
	}
	return inv, nil
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}

// Host returns the entry called name, or nil.
func (inv *Inventory) Host(name string) *Host {
	for _, h := range inv.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// byID returns the entry of the host with id (address:port), or nil.
func (inv *Inventory) byID(id string) *Host { return inv.ids[id] }

// matching lists the hosts whose labels fit the flavor and the spec's
// labels, worked out once per inventory and ask.
func (inv *Inventory) matching(flavor string, labels map[string]string) []*Host {
	key := flavor
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		key += "\x00" + k + "=" + labels[k]
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if hosts, ok := inv.matched[key]; ok {
		return hosts
	}
	if inv.matched == nil {
		inv.matched = map[string][]*Host{}
	}
	inv.matched[key] = inv.match(flavor, labels)
	return inv.matched[key]
}

func (inv *Inventory) match(flavor string, labels map[string]string) []*Host {
	want := map[string]string{"flavor": flavor}
	for k, v := range labels {
		want[k] = v
	}
	var out []*Host
	for _, h := range inv.Hosts {
		fits := true
		for k, v := range want {
			if h.Labels[k] != v {
				fits = false
			}
		}
		if fits {
			out = append(out, h)
		}
	}
	return out
}

// Capacity counts the hosts fit for a flavor and those of them free.
func (p *Provider) Capacity(ctx context.Context, flavor string, fields map[string]any) (free, total int, err error) {
	s, err := specOf(fields)
	if err != nil {
		return 0, 0, err
	}
	inv, err := p.inventory(s.InventoryPath())
	if err != nil {
		return 0, 0, err
	}
	taken, err := p.taken()
	if err != nil {
		return 0, 0, err
	}
	for _, h := range inv.matching(flavor, s.Labels) {
		total++
		if !taken[h.ID()] {
			free++
		}
	}
	return free, total, nil
}

// ExhaustedError is a pool without enough free hosts.
type ExhaustedError struct {
	Flavor              string
	Wanted, Free, Total int
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("onprem: not enough free hosts for flavor %s: wanted %d, free %d, total %d", e.Flavor, e.Wanted, e.Free, e.Total)
}

// Create allocates a free host for the node, or returns the one already
// allocated to req.Token (a resumed run adopts it).
func (p *Provider) Create(ctx context.Context, req providers.NodeRequest) (providers.Instance, error) {
	s, err := specOf(req.Spec)
	if err != nil {
		return providers.Instance{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if a, ok, err := p.alloc.Allocated(req.Token); err != nil {
		return providers.Instance{}, err
	} else if ok {
		return p.instanceOf(a, s.User)
	}
	path := s.InventoryPath()
	inv, err := p.inventory(path)
	if err != nil {
		return providers.Instance{}, err
	}
	candidates := inv.matching(req.Flavor, s.Labels)
	// The hosts taken, as this process last read them and has allocated
	// since; read again before saying the pool is exhausted, as other
	// processes allocate and release too.
	for fresh := p.inUse == nil; ; fresh = true {
		if fresh {
			if p.inUse, err = p.taken(); err != nil {
				return providers.Instance{}, err
			}
		}
		for _, h := range candidates {
			if p.inUse[h.ID()] {
				continue
			}
			ok, err := p.alloc.Allocate(state.Allocation{Host: h.ID(), Token: req.Token, Run: req.Run, Inventory: path})
			if err != nil {
				return providers.Instance{}, err
			}
			p.inUse[h.ID()] = true // ours now, or another process's first
			if ok {
				return instance(inv, h, req.Token, s.User), nil
			}
		}
		if fresh {
			return providers.Instance{}, &providers.CapacityError{Err: &ExhaustedError{Flavor: req.Flavor, Wanted: 1, Free: 0, Total: len(candidates)}}
		}
	}
}

// instanceOf is the node on an allocated host; login overrides the
// host's user.
func (p *Provider) instanceOf(a state.Allocation, login string) (providers.Instance, error) {
	inv, err := p.inventory(a.Inventory)
	if err != nil {
		return providers.Instance{}, err
	}
	h := inv.byID(a.Host)
	if h == nil {
		return providers.Instance{}, fmt.Errorf("onprem: host %s is no longer in %s", a.Host, a.Inventory)
	}
	return instance(inv, h, a.Token, login), nil
}

func instance(inv *Inventory, h *Host, token, login string) providers.Instance {
	if login == "" {
		login = h.User
	}
	inst := providers.Instance{
		ID: h.ID(), Token: token, State: providers.Running, IP: h.Address, PrivateIP: h.Address, Port: h.Port,
		User: login, Existing: true, KeyFile: h.Key, HostName: h.Name,
	}
	if j := inv.Host(h.Jump); j != nil {
		inst.Jump = &providers.Hop{Name: j.Name, Host: j.Address, Port: j.Port, User: j.User, KeyFile: j.Key}
	}
	return inst
}

// Find returns the host allocated to token.
func (p *Provider) Find(ctx context.Context, ref providers.Ref) (providers.Instance, bool, error) {
	a, ok, err := p.alloc.Allocated(ref.Token)
	if err != nil || !ok {
		return providers.Instance{}, false, err
	}
	inst, err := p.instanceOf(a, "")
	return inst, err == nil, err
}

// Delete returns the host to the pool. The host itself is left as it is.
func (p *Provider) Delete(ctx context.Context, ref providers.Ref) error {
	if err := p.alloc.Release(ref.ID); err != nil {
		return err
	}
	p.mu.Lock()
	delete(p.inUse, ref.ID)
	p.mu.Unlock()
	return nil
}

// PowerOff runs the inventory's power_off command for the host.
func (p *Provider) PowerOff(ctx context.Context, ref providers.Ref) error {
	return p.power(ctx, ref.ID, "power_off")
}

// PowerOn runs the inventory's power_on command for the host.
func (p *Provider) PowerOn(ctx context.Context, ref providers.Ref) (providers.Instance, error) {
	if err := p.power(ctx, ref.ID, "power_on"); err != nil {
		return providers.Instance{}, err
	}
	a, _, err := p.alloc.AllocationOf(ref.ID)
	if err != nil {
		return providers.Instance{}, err
	}
	return p.instanceOf(a, "")
}

func (p *Provider) power(ctx context.Context, id, which string) error {
	a, ok, err := p.alloc.AllocationOf(id)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("onprem: host %s is not allocated", id)
	}
	inv, err := p.inventory(a.Inventory)
	if err != nil {
		return err
	}
	h := inv.byID(id)
	if h == nil {
		return fmt.Errorf("onprem: host %s is no longer in %s", id, a.Inventory)
	}
	cmd := h.PowerOff
	if which == "power_on" {
		cmd = h.PowerOn
	}
	if cmd == "" {
		return fmt.Errorf("%s is not supported by onprem for host %s: give power_off and power_on commands for it in %s",
			strings.ReplaceAll(which, "_", " "), h.Name, a.Inventory)
	}
	c := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
	c.Env = append(os.Environ(), "KUMO_HOST="+h.Name, "KUMO_HOST_ADDRESS="+h.Address)
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("onprem: %s of %s: %v: %s", which, h.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// List returns the hosts allocated to a run.
func (p *Provider) List(ctx context.Context, run string, _ []map[string]any) ([]providers.Instance, error) {
	allocs, err := p.alloc.Allocations(run)
	if err != nil {
		return nil, err
	}
	var out []providers.Instance
	for _, a := range allocs {
		inst, err := p.instanceOf(a, "")
		if err != nil {
			// The inventory changed under it: still report the host, so
			// that destroy releases it.
			inst = providers.Instance{ID: a.Host, Token: a.Token, State: providers.Error}
		}
		out = append(out, inst)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
