// Package providers defines the one interface every place that runs
// nodes implements: the embedded local provider (providers/local) and,
// beside it, one package per cloud or pool.
package providers

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// A NodeState is what a node's provider says of it, in the VCP SDK's
// words: what node.state shows a recipe and kumo status prints.
type NodeState string

// Node states, after the VCP SDK's.
const (
	Starting NodeState = "STARTING"
	Running  NodeState = "RUNNING"
	PowerOff NodeState = "POWER_OFF"
	Error    NodeState = "ERROR"
	// Gone is kumo's word for a node its provider no longer has
	// (terminated, or deleted behind kumo's back).
	Gone NodeState = "GONE"
)

// NodeStates are the states a node can be in, in the order kumo lists them.
var NodeStates = []NodeState{Running, PowerOff, Starting, Error, Gone}

// ParseNodeState reads a state's name, in any case.
func ParseNodeState(s string) (NodeState, bool) {
	for _, st := range NodeStates {
		if strings.EqualFold(s, string(st)) {
			return st, true
		}
	}
	return "", false
}

// EmulatorPortKey is the tag (EC2) or metadata key (Nova) with which
// kumo's cloud emulators tell an instance's SSH port: their instances
// share 127.0.0.1. Real instances do not carry it and listen on 22.
const EmulatorPortKey = "kumo:emulator-ssh-port"

// A NodeRequest asks a provider for one node.
type NodeRequest struct {
	// Token is the idempotency token written into the state's intent row
	// before the provider is called. Asking twice with the same token
	// yields the same node: this is how a resumed run adopts a node whose
	// creation it did not live to record.
	Token string

	Run, Group, Unit, Name string
	Index                  int // the node's number in its unit, from 1
	Flavor                 string
	Spec                   map[string]any // the flavor's fields after overrides
	AuthorizedKey          string         // the group's public key, authorized_keys format
}

// An Instance is a provider's view of one node.
type Instance struct {
	ID        string // the provider's own id
	Token     string
	State     NodeState
	IP        string // where SSH and services are reached from kumo's host
	PrivateIP string
	Port      int    // SSH port
	User      string // default login user
	HostKey   string // the node's SSH host key if the provider knows it (authorized_keys format)

	// HostName is the machine's own name where the provider has one (an
	// on-prem inventory's "h12"), shown beside the node's name.
	HostName string

	// Existing is true for machines kumo did not create (on-prem hosts):
	// they are reached with KeyFile, or the user's keys and agent, and
	// their host keys must be known (known_hosts or pinned), not learnt.
	Existing bool
	KeyFile  string
	Jump     *Hop // reach the node through this login node

	// Location is where a node found by List lives (region, endpoint):
	// what Delete needs beside its id, never credentials.
	Location map[string]any
}

// Hop is a jump host on the way to a node.
type Hop struct {
	Name, Host, User, KeyFile string
	Port                      int
}

// A Ref names an existing node to its provider: its id, its idempotency
// token, and the spec fields of its unit (which tell a cloud provider the
// region, endpoint or inventory the node lives in).
type Ref struct {
	ID    string
	Token string
	Spec  map[string]any
}

// A Provider creates and manages nodes. Every method may be called
// concurrently for different nodes; N nodes take about as long as one.
type Provider interface {
	Name() string
	// NewSpec returns a pointer to a new, zero typed spec of this
	// provider: a struct whose json tags name the fields a spec may set
	// (see SpecFieldNames and DecodeSpec).
	NewSpec() any
	// Create makes the node, or returns the one already made under req.Token.
	Create(ctx context.Context, req NodeRequest) (Instance, error)
	// Find looks a node up by ref.Token; ok is false when it does not exist.
	Find(ctx context.Context, ref Ref) (inst Instance, ok bool, err error)
	// Delete removes a node; deleting a node that is gone is not an error.
	Delete(ctx context.Context, ref Ref) error
	PowerOff(ctx context.Context, ref Ref) error
	PowerOn(ctx context.Context, ref Ref) (Instance, error)
	// List returns every node the provider holds for a run, including
	// ones the state does not know (a leak to clean up). specs are the
	// spec fields of the run's units: where to look.
	List(ctx context.Context, run string, specs []map[string]any) ([]Instance, error)
}

// A Validator checks a spec before anything is created, so that missing
// credentials, an unknown region, instance type or image fail early.
type Validator interface {
	Validate(ctx context.Context, flavor string, spec map[string]any) error
}

// A Locator resolves where a spec's nodes live beyond the spec itself:
// the region, endpoint, profile, cloud or inventory that the provider
// would otherwise take from the environment. kumo records it with the
// unit, so that destroy and status find the nodes from any shell. It
// must never return credentials.
type Locator interface {
	Locate(spec map[string]any) map[string]any
}

// A GroupCleaner removes what a provider made for a unit group as a
// whole (cloud key pairs, security groups) once its nodes are gone.
type GroupCleaner interface {
	DeleteGroup(ctx context.Context, run, group string, specs []map[string]any) error
}

// A DataKeeper keeps data of a unit group on this host beyond its nodes:
// the folders a container group's nodes share (home folders, job
// output). Deleting the group deletes it too unless the user keeps it.
type DataKeeper interface {
	// GroupData lists the host folders holding the group's data; group
	// "" means every group of run.
	GroupData(run, group string) []string
	// DeleteGroupData removes them.
	DeleteGroupData(run, group string) error
}

// A Pool is a provider with a fixed set of machines (on-prem hosts). Its
// capacity is checked before any node is asked for, so that a unit that
// cannot fit fails whole, with the counts, instead of half made.
type Pool interface {
	Capacity(ctx context.Context, flavor string, spec map[string]any) (free, total int, err error)
}

// A Caveat is what a user must know of a provider's nodes before using
// them, said when a unit is made.
type Caveat interface {
	Caveat() string
}

// Size is what a flavor gives a node, for `kumo flavors`. Zero values are
// unknown.
type Size struct {
	VCPUs     int
	MemoryGB  float64
	DiskGB    int
	PriceHour float64 // USD per hour, on demand
}

// A Describer tells the size of a spec's nodes.
type Describer interface {
	Describe(spec map[string]any) Size
}

// BadInputError is a mistake in a file the user keeps for a provider
// (an inventory, credentials, a cloud's settings), found when the
// provider reads it: kumo exits 2 for it, as for a mistake in a recipe.
type BadInputError struct{ Err error }

func (e *BadInputError) Error() string  { return e.Err.Error() }
func (e *BadInputError) Unwrap() error  { return e.Err }
func (e *BadInputError) BadInput() bool { return true }

// CapacityError says a provider had no room for a node: the cloud's
// capacity or the account's quota (EC2's InsufficientInstanceCapacity,
// InstanceLimitExceeded, VcpuLimitExceeded; Nova's "No valid host was
// found"), an on-prem pool exhausted. Asking elsewhere may work; asking
// the same place again at once will not. Only these fail over to
// another place: any other error (credentials, a bad image) is the
// user's to fix.
type CapacityError struct{ Err error }

func (e *CapacityError) Error() string { return e.Err.Error() }
func (e *CapacityError) Unwrap() error { return e.Err }

// IsCapacity reports whether err says a provider had no room.
func IsCapacity(err error) bool {
	var c *CapacityError
	return errors.As(err, &c)
}

// BadInputf returns a BadInputError with a formatted message.
func BadInputf(format string, args ...any) error {
	return &BadInputError{Err: fmt.Errorf(format, args...)}
}
