package builtins

import "go.starlark.net/starlark"

// Drift is one thing on one node that is no longer as a replayed call
// made it: a file changed by hand, a package removed, a service stopped.
type Drift struct {
	Node string `json:"node"`
	What string `json:"what"` // as the check said it: "files: /etc/motd differs"
	// Unchecked: the node could not be asked (unreachable, the check
	// failed); What says why.
	Unchecked bool `json:"unchecked,omitempty"`
}

// A Checker runs a replayed call in check mode: it changes nothing and
// returns what differs. checked is false for a call that cannot look
// (an ssh_run whose command does not declare check=...).
type Checker func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (drift []Drift, checked bool, err error)
