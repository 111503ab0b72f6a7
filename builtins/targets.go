package builtins

import (
	"errors"
	"fmt"
	"net"
	"os/user"
	"strconv"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/fleet"
	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/state"
)

// A Host is a value that names a node of the run (see builtins/units).
type Host interface {
	starlark.Value
	HostID() int64     // the node's resource id in the state
	HostToken() string // its idempotency token ("" in journals of older kumo)
	NodeName() string
}

// DeletedError is a node value used after its node was deleted through
// kumo. The runner says which cell made it, to run again.
type DeletedError struct {
	Node, Token string
}

func (e *DeletedError) Error() string {
	return fmt.Sprintf("node %s no longer exists (it was deleted)", e.Node)
}

// An Endpoint is everything needed to reach one target over SSH.
type Endpoint struct {
	Label   string         // the node's name or the address; prefixes output lines
	Value   starlark.Value // what the recipe passed for this target
	NodeID  int64          // 0 for an address that is not a node of the run
	Host    string
	Port    int
	User    string
	KeyFile string    // the group's key for nodes; "" means the user's own keys and agent
	Jump    *Endpoint // a login node to reach this one through (ProxyJump)

	// PinTarget keys the pinned host key in the state. PinOnFirstUse is
	// true for nodes kumo created itself: their first key is learnt.
	// Other hosts must already be in known_hosts or pinned.
	PinTarget     string
	PinOnFirstUse bool
}

// OnHost reports whether commands sent to the endpoint run on kumo's
// own host: it is reached directly at a loopback address (local nodes,
// emulated instances without containers, an sshd on 127.0.0.1).
func (ep Endpoint) OnHost() bool {
	if ep.Jump != nil {
		return false // loopback on the login node, not here
	}
	if ep.Host == "localhost" {
		return true
	}
	ip := net.ParseIP(ep.Host)
	return ip != nil && ip.IsLoopback()
}

// Addr is host:port.
func (ep Endpoint) Addr() string { return net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port)) }

// Targets resolves a target argument: a node, an address, or a list of
// them. many reports whether a list was given (results then come back as
// a list in the same order).
func (e *Env) Targets(v starlark.Value) (eps []Endpoint, many bool, err error) {
	if list, ok := v.(starlark.Indexable); ok && v.Type() != "string" {
		if list.Len() == 0 {
			return nil, true, fmt.Errorf("empty list of targets")
		}
		for i := 0; i < list.Len(); i++ {
			ep, err := e.Target(list.Index(i))
			if err != nil {
				return nil, true, err
			}
			eps = append(eps, ep)
		}
		return eps, true, nil
	}
	ep, err := e.Target(v)
	return []Endpoint{ep}, false, err
}

// TargetError wraps an error resolving b's target argument: a mistake in
// it names the parameter, as UnpackArgs would.
func TargetError(b *starlark.Builtin, err error) error {
	if starkit.IsInputError(err) {
		return Inputf(b, "for parameter target: %v", err)
	}
	return Wrap(b, err)
}

// Target resolves one node or address.
func (e *Env) Target(v starlark.Value) (Endpoint, error) {
	switch v := v.(type) {
	case Host:
		r, err := e.Reader().Node(v.HostID())
		if errors.Is(err, state.ErrNotFound) {
			return Endpoint{}, &DeletedError{Node: v.NodeName(), Token: v.HostToken()}
		}
		if err != nil {
			return Endpoint{}, err
		}
		return e.nodeEndpoint(r, v)
	case starlark.String:
		return e.addressEndpoint(string(v))
	}
	return Endpoint{}, &starkit.InputError{Err: fmt.Errorf("want a node, an address or a list of them, got %s", v.Type())}
}

func (e *Env) nodeEndpoint(n fleet.Node, v starlark.Value) (Endpoint, error) {
	switch {
	case n.Status != fleet.Ready:
		return Endpoint{}, fmt.Errorf("node %s is not ready (%s); re-run the cell that creates it", n.Name, n.Status)
	case n.State == providers.PowerOff:
		return Endpoint{}, fmt.Errorf("node %s is powered off; call power_on() on its unit first", n.Name)
	}
	keyFile, err := e.Reader().KeyFile(n)
	if err != nil {
		return Endpoint{}, fmt.Errorf("node %s: %w", n.Name, err)
	}
	ep := Endpoint{
		Label: n.Name, Value: v, NodeID: n.ID,
		Host: n.IP, Port: n.Port, User: n.User, KeyFile: keyFile,
		PinTarget: state.NodeKeyTarget(n.ID), PinOnFirstUse: !n.Existing,
	}
	if j := n.Jump; j != nil {
		ep.Jump = &Endpoint{Label: j.Name, Host: j.Host, Port: j.Port, User: j.User, KeyFile: j.KeyFile, Value: starlark.String(j.Name),
			PinTarget: "addr:" + net.JoinHostPort(j.Host, strconv.Itoa(j.Port))}
	}
	return ep, nil
}

// addressEndpoint resolves "host" or "host:port". An address of one of
// the run's nodes is that node; several nodes sharing an IP (local nodes
// all live on 127.0.0.1) need the port to tell them apart.
func (e *Env) addressEndpoint(addr string) (Endpoint, error) {
	host, port := addr, 0
	if h, p, err := net.SplitHostPort(addr); err == nil {
		host = h
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return Endpoint{}, &starkit.InputError{Err: fmt.Errorf("bad port in address %q: want host:port with a port from 1 to 65535", addr)}
		}
	}
	nodes, err := e.Reader().Nodes(e.Run, "", "")
	if err != nil {
		return Endpoint{}, err
	}
	var match []fleet.Node
	for _, n := range nodes {
		if (n.IP == host || n.PrivateIP == host) && (port == 0 || port == n.Port) {
			match = append(match, n)
		}
	}
	if len(match) == 1 {
		return e.nodeEndpoint(match[0], starlark.String(addr))
	}
	if len(match) > 1 {
		return Endpoint{}, &starkit.InputError{Err: fmt.Errorf("address %s matches %d nodes of this run; pass the node itself or host:port", addr, len(match))}
	}
	if port == 0 {
		port = 22
	}
	login := "root"
	if u, err := user.Current(); err == nil {
		login = u.Username
	}
	return Endpoint{
		Label: addr, Value: starlark.String(addr), Host: host, Port: port, User: login,
		PinTarget: "addr:" + net.JoinHostPort(host, strconv.Itoa(port)),
	}, nil
}

// A Handle is a value that names a part of the world whose contents
// change while the value stays the same: a unit group, a unit (see
// builtins/units). A cell that reads one depends on the earlier cells
// that made or deleted something in it (see runner).
type Handle interface {
	starlark.Value
	Scope() (group, unit string) // unit is "" for a whole group
}
