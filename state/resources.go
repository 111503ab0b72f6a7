package state

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Resource kinds.
const (
	KindGroup = "group"
	KindUnit  = "unit"
	KindNode  = "node"
)

// Resource statuses. Every resource is written as an Intent, with a fresh
// idempotency token, before its provider is asked for it, and becomes
// Ready once the provider's answer is recorded. A crash in between leaves
// an Intent whose token the provider knows: resuming adopts what the
// provider made under that token instead of making a second one.
type ResourceStatus string

const (
	Intent   ResourceStatus = "intent"
	Ready    ResourceStatus = "ready"
	Deleting ResourceStatus = "deleting"
)

// A Resource is a unit group, a unit or a node of a run.
type Resource struct {
	ID       int64
	Run      string
	Kind     string
	Group    string
	Unit     string
	Name     string
	Seq      int // node number within its unit
	Provider string
	Token    string
	Status   ResourceStatus
	State    string          // nodes: RUNNING, POWER_OFF, ...
	Spec     json.RawMessage // units: the spec they were created with; nodes: their part's spec (see Part)
	Data     Data
}

// Data is what providers and builtins learn about a resource.
type Data struct {
	ProviderID string `json:"provider_id,omitempty"`
	IP         string `json:"ip,omitempty"`
	PrivateIP  string `json:"private_ip,omitempty"`
	Port       int    `json:"port,omitempty"`
	User       string `json:"user,omitempty"`
	KeyFile    string `json:"key_file,omitempty"` // groups: the key of the group's nodes; nodes: a key of their own
	Nodes      int    `json:"nodes,omitempty"`    // units: how many nodes were asked for

	// HostName is the machine's own name (an on-prem inventory's).
	HostName string `json:"host_name,omitempty"`

	// Existing marks a node kumo did not create (an on-prem host): kumo
	// logs in with its own key or the user's keys, not the group's, and
	// its host key must already be known rather than learnt.
	Existing bool `json:"existing,omitempty"`
	Jump     *Hop `json:"jump,omitempty"` // a login node to reach it through

	// MeshIP is a node's address on the mesh it joined (Mesh, its name):
	// what other nodes reach it at, whatever site they are on.
	Mesh   string `json:"mesh,omitempty"`
	MeshIP string `json:"mesh_ip,omitempty"`

	// Origin is the call that made the resource: "CELL/Builtin#N", the
	// Nth call of that builtin in the cell record CELL (see
	// runner). When the cell runs again, the same call finds what
	// it made before instead of making it twice. Empty for the REPL.
	Origin string `json:"origin,omitempty"`
	// DeletingBy is the call deleting a node, so that a deletion cut
	// short is finished, not started over on other nodes.
	DeletingBy string `json:"deleting_by,omitempty"`
	// DeletedBy (units) lists, per delete_nodes(count=) call, the nodes
	// it deleted: run again, the call deletes no more.
	DeletedBy map[string][]string `json:"deleted_by,omitempty"`
	// Location (units) is where the provider finds the unit's nodes
	// beyond its spec (region, endpoint, profile, cloud, inventory),
	// resolved when the unit was made, so that destroy does not depend
	// on the shell it runs in. Never credentials.
	Location map[string]any `json:"location,omitempty"`
	// Vars (groups) are the unit group's variables: what the recipe that
	// made it decided, for the recipes that work on it later. Each is a
	// value as the journal encodes it (secrets by name only).
	Vars map[string]json.RawMessage `json:"vars,omitempty"`
	// Parts (units) are the specs other than the unit's own that some of
	// its nodes were made with: a placement spread over candidates. Each
	// node of a part has the part's spec as its own.
	Parts []Part `json:"parts,omitempty"`
}

// A Part is a spec some of a unit's nodes were made with, and where its
// provider finds them (as Location for the unit's own spec).
type Part struct {
	Provider string          `json:"provider"`
	Spec     json.RawMessage `json:"spec"`
	Location map[string]any  `json:"location,omitempty"`
}

// Hop is a jump host (ProxyJump).
type Hop struct {
	Name    string `json:"name"`
	Host    string `json:"host"`
	Port    int    `json:"port"`
	User    string `json:"user"`
	KeyFile string `json:"key_file,omitempty"`
}

const resourceCols = `id, run, kind, grp, unit, name, seq, provider, token, status, state, spec, data`

func scanResource(row interface{ Scan(...any) error }) (Resource, error) {
	var r Resource
	var spec, data string
	if err := row.Scan(&r.ID, &r.Run, &r.Kind, &r.Group, &r.Unit, &r.Name, &r.Seq, &r.Provider, &r.Token, &r.Status, &r.State, &spec, &data); err != nil {
		return r, err
	}
	r.Spec = json.RawMessage(spec)
	if err := json.Unmarshal([]byte(data), &r.Data); err != nil {
		return r, fmt.Errorf("resource %d: %w", r.ID, err)
	}
	return r, nil
}

// Query selects resources of a run. Empty fields match anything.
type Query struct {
	Run, Kind, Group, Unit, Name, Token string
	ID                                  int64
}

// Resources returns the resources matching q, in creation order.
func (s *Store) Resources(q Query) ([]Resource, error) {
	where := []string{"1=1"}
	var args []any
	add := func(col string, v any, set bool) {
		if set {
			where = append(where, col+"=?")
			args = append(args, v)
		}
	}
	add("run", q.Run, q.Run != "")
	add("kind", q.Kind, q.Kind != "")
	add("grp", q.Group, q.Group != "")
	add("unit", q.Unit, q.Unit != "")
	add("name", q.Name, q.Name != "")
	add("token", q.Token, q.Token != "")
	add("id", q.ID, q.ID != 0)
	rows, err := s.DB.Query(`SELECT `+resourceCols+` FROM resources WHERE `+strings.Join(where, " AND ")+` ORDER BY kind, grp, unit, seq, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Resource
	for rows.Next() {
		r, err := scanResource(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Resource returns the one resource matching q.
func (s *Store) Resource(q Query) (Resource, error) {
	rs, err := s.Resources(q)
	if err != nil {
		return Resource{}, err
	}
	if len(rs) == 0 {
		return Resource{}, ErrNotFound
	}
	return rs[0], nil
}

// InsertIntents records resources before anything is asked of a provider,
// all in one durable transaction. IDs are filled in.
func (s *Store) InsertIntents(rs []*Resource) error {
	tx, err := s.DB.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, r := range rs {
		spec := string(r.Spec)
		if spec == "" {
			spec = "{}"
		}
		data, _ := json.Marshal(r.Data)
		if r.Status == "" {
			r.Status = Intent
		}
		if err := tx.QueryRow(`INSERT INTO resources(run, kind, grp, unit, name, seq, provider, token, status, state, spec, data, created_at, updated_at)
			VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id`,
			r.Run, r.Kind, r.Group, r.Unit, r.Name, r.Seq, r.Provider, r.Token, r.Status, r.State, spec, string(data), now(), now()).Scan(&r.ID); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// UpdateResource writes back a resource's status, state and data.
func (s *Store) UpdateResource(r *Resource) error {
	data, _ := json.Marshal(r.Data)
	res, err := s.DB.Exec(`UPDATE resources SET status=?, state=?, data=?, updated_at=? WHERE id=?`, r.Status, r.State, string(data), now(), r.ID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("resource %s %s: %w", r.Kind, r.Name, ErrNotFound)
	}
	return nil
}

// DeleteResource forgets a resource once its provider has deleted it,
// together with the host key pinned for it.
func (s *Store) DeleteResource(id int64) error {
	tx, err := s.DB.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`DELETE FROM resources WHERE id=?`, id); err != nil {
		return err
	}
	if _, err := tx.Exec(`DELETE FROM host_keys WHERE target=?`, NodeKeyTarget(id)); err != nil {
		return err
	}
	return tx.Commit()
}

// NextSeq is the number the next node of a unit gets.
func (s *Store) NextSeq(run, group, unit string) (int, error) {
	var n sql.NullInt64
	err := s.DB.QueryRow(`SELECT max(seq) FROM resources WHERE run=? AND kind=? AND grp=? AND unit=?`, run, KindNode, group, unit).Scan(&n)
	return int(n.Int64) + 1, err
}

// NodeKeyTarget is the host_keys key under which a node's host key is
// pinned. Nodes are pinned by identity, not address: a local node's port
// may be reused by a later node with another key.
func NodeKeyTarget(id int64) string { return fmt.Sprintf("node:%d", id) }

// PinnedKey returns the host key pinned for target, or "".
func (s *Store) PinnedKey(target string) (string, error) {
	var key string
	err := s.DB.QueryRow(`SELECT public_key FROM host_keys WHERE target=?`, target).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return key, err
}

// PinKey records the host key of target on first contact. It never
// replaces an existing pin: a changed key must be refused, not learnt.
func (s *Store) PinKey(run, target, publicKey string) error {
	_, err := s.DB.Exec(`INSERT INTO host_keys(target, run, public_key, pinned_at) VALUES(?,?,?,?) ON CONFLICT(target) DO NOTHING`, target, run, publicKey, now())
	return err
}
