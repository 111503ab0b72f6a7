package fleet

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"

	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/state"
)

// The read side of the fleet: what commands show of a run's world
// (status, destroy's question, export's metadata, the checks before a
// run), as typed values rather than the state's rows.

// New is the engine of run's resources in store, made by providers.
// Callers set the optional fields (Report, Ready, Fault...) after.
func New(store Records, run string, provs map[string]providers.Provider) *Engine {
	return &Engine{Store: store, Run: run, Providers: provs}
}

// A NodeView is one node of a run as the CLI shows it.
type NodeView struct {
	Group, Unit, Name, Provider string
	HostName                    string // the machine's own name, where it has another (on-prem)
	// Ready: the provider made it and the state recorded it (not an
	// intent, not being deleted).
	Ready     bool
	Record    string              // how the state records it: intent, ready, deleting
	State     providers.NodeState // as last recorded, or as its provider says now (Survey's check)
	Address   string              // ip:port, "" until it has one
	PriceHour float64             // USD on demand, as its provider describes its spec; 0 unknown
}

// Costs reports whether the node is billed now: ready and running.
func (n NodeView) Costs() bool { return n.Ready && n.State == providers.Running }

// A Survey is the nodes of a run.
type Survey struct {
	Nodes []NodeView
	// Checked: the states were asked of the providers. Warning says why
	// they were not, when asking failed.
	Checked bool
	Warning string
}

// PriceHour adds up what the run's billed nodes cost per hour.
func (s Survey) PriceHour() float64 {
	var sum float64
	for _, n := range s.Nodes {
		if n.Costs() {
			sum += n.PriceHour
		}
	}
	return sum
}

// Survey lists the run's nodes; with check, their states are asked of
// their providers (nothing is written).
func (e *Engine) Survey(ctx context.Context, check bool) (Survey, error) {
	var s Survey
	nodes, err := e.Store.Resources(state.Query{Run: e.Run, Kind: state.KindNode})
	if err != nil {
		return s, err
	}
	live := map[int64]providers.NodeState{}
	if check && len(nodes) > 0 {
		if live, err = e.refresh(ctx, readyOnly(nodes)); err != nil {
			s.Warning = "node states as recorded: " + err.Error()
		} else {
			s.Checked = true
		}
	}
	price := e.prices()
	for _, n := range nodes {
		v := NodeView{Group: n.Group, Unit: n.Unit, Name: n.Name, Provider: n.Provider, HostName: n.Data.HostName,
			Ready: n.Status == state.Ready, Record: string(n.Status), State: providers.NodeState(n.State), PriceHour: price(n)}
		if st, ok := live[n.ID]; ok {
			v.State = st
		}
		if n.Data.IP != "" {
			v.Address = n.Data.IP + ":" + strconv.Itoa(n.Data.Port)
		}
		s.Nodes = append(s.Nodes, v)
	}
	return s, nil
}

// prices gives a node's price per hour as its provider describes the
// spec it was made with: its unit's, or its part's.
func (e *Engine) prices() func(n state.Resource) float64 {
	units := map[string]json.RawMessage{}
	rows, _ := e.Store.Resources(state.Query{Run: e.Run, Kind: state.KindUnit})
	for _, u := range rows {
		units[u.Group+"/"+u.Name] = u.Spec
	}
	return func(n state.Resource) float64 {
		raw := n.Spec
		if !inPart(n) {
			raw = units[n.Group+"/"+n.Unit]
		}
		spec, err := DecodeSpec(raw)
		if err != nil {
			return 0
		}
		if d, ok := e.Providers[spec.Provider].(providers.Describer); ok {
			return d.Describe(spec.Fields).PriceHour
		}
		return 0
	}
}

// Holds reports whether the state records anything of the run (nodes,
// units, groups), recorded or not as a run: an interrupted REPL's.
func (e *Engine) Holds() (bool, error) {
	rs, err := e.Store.Resources(state.Query{Run: e.Run})
	return len(rs) > 0, err
}

// UnitsByProvider lists the run's units ("group/unit") per provider.
func (e *Engine) UnitsByProvider() (map[string][]string, error) {
	rows, err := e.Store.Resources(state.Query{Run: e.Run, Kind: state.KindUnit})
	if err != nil {
		return nil, err
	}
	on := map[string][]string{}
	for _, u := range rows {
		on[u.Provider] = append(on[u.Provider], u.Group+"/"+u.Name)
	}
	return on, nil
}

// ProvidersUsed lists, sorted, the providers of the run's resources.
func (e *Engine) ProvidersUsed() ([]string, error) {
	rs, err := e.Store.Resources(state.Query{Run: e.Run})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, r := range rs {
		if r.Provider != "" && !seen[r.Provider] {
			seen[r.Provider] = true
			out = append(out, r.Provider)
		}
	}
	sort.Strings(out)
	return out, nil
}

// NodeCount is how many nodes the state records for the run.
func (e *Engine) NodeCount() (int, error) {
	nodes, err := e.Store.Resources(state.Query{Run: e.Run, Kind: state.KindNode})
	return len(nodes), err
}
