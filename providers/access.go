package providers

import (
	"context"
	"fmt"
)

// GroupAccess is what a cloud provider makes for a unit group as a
// whole: a key pair holding the group's public key, and a security group
// that lets SSH and its units' ports in.
type GroupAccess struct {
	KeyPair       string // its name (KeyPairName)
	SecurityGroup string // its id
}

// An AccessAPI makes and removes them in one cloud. Every call tolerates
// what already exists or is already gone, so a resumed run finds what it
// made; errors say which cloud and what failed.
type AccessAPI interface {
	ImportKeyPair(ctx context.Context, name, publicKey string) error
	// SecurityGroup finds the security group called name, or makes it.
	SecurityGroup(ctx context.Context, name, description string) (id string, err error)
	// Allow adds an ingress rule (one it has already is not an error).
	Allow(ctx context.Context, groupID string, r IngressRule) error
	DeleteSecurityGroups(ctx context.Context, name string) error
	KeyPairNames(ctx context.Context) ([]string, error)
	DeleteKeyPair(ctx context.Context, name string) error
}

// An IngressRule lets traffic into a security group's nodes.
type IngressRule struct {
	Protocol string // "tcp" or "udp", from anywhere
	Port     int
	// FromGroup lets in everything the group's own nodes send (every
	// protocol and port, Protocol and Port unset): a site's nodes talk
	// to each other freely, as in a cloud's default security group.
	FromGroup bool
}

func (r IngressRule) String() string {
	if r.FromGroup {
		return "everything from the group's own nodes"
	}
	return fmt.Sprintf("%s port %d", r.Protocol, r.Port)
}

// MeshPort is the UDP port kumo's mesh listens on by default (WireGuard's
// own): open in every cloud group, where a node with a public address is
// a hub that other sites call. WireGuard answers nothing but its peers'
// keys.
const MeshPort = 51820

// Ingress is what a unit group's security group lets in: SSH and the
// units' TCP ports from anywhere, the mesh's UDP port, and everything
// from the group's own nodes.
func Ingress(ports []int) []IngressRule {
	rules := []IngressRule{{FromGroup: true}, {Protocol: "tcp", Port: 22}}
	for _, p := range ports {
		rules = append(rules, IngressRule{Protocol: "tcp", Port: p})
	}
	return append(rules, IngressRule{Protocol: "udp", Port: MeshPort})
}

// Accesses makes and removes unit groups' access in one cloud (a
// provider keeps one per API client), remembering what it made so that
// the nodes of a unit ask once.
type Accesses struct {
	groups Memo[GroupAccess]
	ports  Memo[struct{}]
}

// Ensure makes the group's key pair and security group and lets in what
// Ingress(ports) says.
func (a *Accesses) Ensure(ctx context.Context, api AccessAPI, run, group, publicKey string, ports []int) (GroupAccess, error) {
	keyName := KeyPairName(run, group, publicKey)
	g, err := a.groups.Get(keyName, func() (GroupAccess, error) {
		// A key pair of that name holds this very key: the name says
		// which key it is.
		if err := api.ImportKeyPair(ctx, keyName, publicKey); err != nil {
			return GroupAccess{}, err
		}
		id, err := api.SecurityGroup(ctx, GroupName(run, group), "kumo unit group "+group)
		return GroupAccess{KeyPair: keyName, SecurityGroup: id}, err
	})
	if err != nil {
		return GroupAccess{}, err
	}
	// Units of one group may open different ports: each rule once.
	for _, rule := range Ingress(ports) {
		_, err := a.ports.Get(g.SecurityGroup+"/"+rule.String(), func() (struct{}, error) {
			return struct{}{}, api.Allow(ctx, g.SecurityGroup, rule)
		})
		if err != nil {
			return GroupAccess{}, err
		}
	}
	return g, nil
}

// Remove deletes the group's security group and its key pairs, under
// its current key and any earlier one. The group's nodes must be gone.
func (a *Accesses) Remove(ctx context.Context, api AccessAPI, run, group string) error {
	if err := api.DeleteSecurityGroups(ctx, GroupName(run, group)); err != nil {
		return err
	}
	names, err := api.KeyPairNames(ctx)
	if err != nil {
		return err
	}
	for _, name := range names {
		if !IsGroupKeyPair(name, run, group) {
			continue
		}
		if err := api.DeleteKeyPair(ctx, name); err != nil {
			return err
		}
		a.groups.Forget(name)
	}
	return nil
}
