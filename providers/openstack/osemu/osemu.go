// Package osemu emulates the subset of OpenStack that kumo's openstack
// provider uses — Keystone v3, Nova (compute v2.1), Neutron (network
// v2.0) and Glance (image v2) — on 127.0.0.1, so that openstack recipes
// run end to end with no cloud: every server is a real local node
// (providers/local) reachable over SSH.
//
// It follows the OpenStack API references:
//   - Identity v3: version discovery without a token (GET /identity: 300
//     with the versions; GET /identity/v3: 200 with v3's document, which
//     keystoneauth asks for before authenticating), POST /v3/auth/tokens
//     (password method, project scope), the token in X-Subject-Token, the
//     service catalog in the body.
//   - Compute v2.1: os-keypairs (create, list, delete), flavors (detail,
//     show, os-extra_specs), servers (create, summary list and detail list
//     with name regex, show, delete), server actions
//     os-stop and os-start; statuses BUILD, ACTIVE, SHUTOFF, ERROR; error
//     bodies {"itemNotFound"|"badRequest"|"conflictingRequest"|"overLimit":
//     {"code", "message"}}.
//   - Networking v2.0: networks, ports (by device_id), security-groups,
//     security-group-rules, floatingips (create, list, associate and
//     disassociate by PUT, delete); errors {"NeutronError": {...}}.
//   - Image v2: images (list by name, show by id).
//   - Rate limiting: HTTP 429 with Retry-After.
//
// One extension: a server's metadata carries kumo:emulator-ssh-port, the
// port of its node's SSH server, since all emulated servers share
// 127.0.0.1 (a real server listens on 22).
package osemu

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/providers/emulate"
	"github.com/kumo-dev/kumo/providers/openstack/sizes"
)

// Credentials the emulator accepts.
const (
	User     = "kumo"
	Password = "kumo-emulator"
	Project  = "kumo"
	Domain   = "Default"
	Region   = "RegionOne"
)

// Options configure an emulator.
type Options struct {
	Dir         string          // where the servers' nodes live
	Backing     emulate.Backing // what stands for servers ("": local nodes)
	LocalServer []string        // node server command for the local nodes (tests)
	APIOnly     bool            // servers without nodes (see emulate.Base)
	// Capacity is how many servers of a flavor the compute hosts hold at
	// once, in every zone (m1.large) or in one (m1.large@az2); one more
	// goes to ERROR with the scheduler's "No valid host was found", as
	// Nova's does. A flavor not listed has no limit.
	Capacity map[string]int
	// Faults: throttling answers 429 with Retry-After, failures 503.
	emulate.Faults
}

// Images the emulator offers: id -> name.
var Images = map[string]string{
	"5f8a1b2c-0000-4000-8000-000000002204": "ubuntu-22.04",
	"5f8a1b2c-0000-4000-8000-000000002404": "ubuntu-24.04",
	"5f8a1b2c-0000-4000-8000-000000000012": "debian-12",
	"5f8a1b2c-0000-4000-8000-000000000500": BigImage,
}

// BigImage asks for more disk than any flavor has (min_disk 500 GB):
// Nova refuses it with 400, as real clouds do with a large appliance.
const BigImage = "bigdisk-500g"

// minDisk is an image's min_disk in GB.
func minDisk(name string) int {
	if name == BigImage {
		return 500
	}
	return 0
}

// Server is an emulated OpenStack.
type Server struct {
	*emulate.Base
	opts  Options
	url   string
	token string

	mu       sync.Mutex
	keypairs map[string]string
	servers  map[string]*server
	order    []string
	groups   map[string]*secGroup
	networks []network
	fips     map[string]*floatingIP
}

type server struct {
	ID, Name, Flavor, Image, KeyName, Status, Zone string
	Metadata                                       map[string]string
	Groups                                         []string
	Network                                        string
	Port                                           int
	Addr                                           string // the backing node's private address
	Created                                        time.Time
	fault                                          string
	// deleting: asked to be deleted, its machine not yet gone. Nova shows
	// such a server (task_state "deleting") until its compute host has
	// torn it down, and only then answers 404.
	deleting bool
}

type secGroup struct {
	ID, Name, Description string
	Rules                 []map[string]any
	Created               string
}

type network struct {
	ID, Name, SubnetID string
	External           bool
}

type floatingIP struct {
	ID, Network, PortID, Address string
	Created                      string
}

// New makes an emulator keeping its nodes in opts.Dir.
func New(opts Options) *Server {
	base := emulate.NewBase("osemu", opts.Dir, opts.Backing, opts.LocalServer, opts.Faults)
	base.APIOnly = opts.APIOnly
	return &Server{Base: base, opts: opts, token: newID(), keypairs: map[string]string{},
		servers: map[string]*server{}, groups: map[string]*secGroup{}, fips: map[string]*floatingIP{},
		networks: []network{{ID: newUUID(), Name: "private", SubnetID: newUUID()}, {ID: newUUID(), Name: "public", SubnetID: newUUID(), External: true}}}
}

// Listen serves on addr until ctx ends and returns the Keystone URL.
func (s *Server) Listen(ctx context.Context, addr string) (string, error) {
	url, err := emulate.Serve(ctx, addr, s)
	if err != nil {
		return "", err
	}
	s.url = url
	return s.url + "/identity/v3", nil
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func newUUID() string {
	h := newID()
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

type reply struct {
	status int
	body   any
	header map[string]string
}

func novaError(status int, kind, format string, args ...any) *reply {
	return &reply{status: status, body: map[string]any{kind: map[string]any{"code": status, "message": fmt.Sprintf(format, args...)}}}
}

func neutronError(status int, kind, format string, args ...any) *reply {
	return &reply{status: status, body: map[string]any{"NeutronError": map[string]any{"type": kind, "message": fmt.Sprintf(format, args...), "detail": ""}}}
}

func ok(status int, body any) *reply { return &reply{status: status, body: body} }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.ServeCalls(w, r) {
		return
	}
	throttle, fail := s.Admit(r.Method + " " + uuidish.ReplaceAllString(r.URL.Path, "/{id}"))
	rep := s.route(r, throttle, fail)
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if rep.body == nil {
		w.WriteHeader(rep.status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	json.NewEncoder(w).Encode(rep.body)
}

var uuidish = regexp.MustCompile(`/[0-9a-f-]{16,}`)

func (s *Server) route(r *http.Request, throttle, fail bool) *reply {
	path := r.URL.Path
	if path == "/identity/v3/auth/tokens" && r.Method == http.MethodPost {
		return s.auth(r)
	}
	// Version discovery documents, as each service's root serves them,
	// without a token (keystoneauth asks before it authenticates).
	discovery := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch strings.TrimSuffix(path, "/") {
	case "/identity/v3":
		if discovery {
			return ok(200, map[string]any{"version": s.identityVersion()})
		}
	case "", "/identity":
		if discovery {
			return ok(300, map[string]any{"versions": map[string]any{"values": []any{s.identityVersion()}}})
		}
	case "/network":
		return ok(200, map[string]any{"versions": []map[string]any{{"id": "v2.0", "status": "CURRENT",
			"links": []map[string]any{{"rel": "self", "href": s.url + "/network/v2.0/"}}}}})
	case "/image":
		return ok(200, map[string]any{"versions": []map[string]any{{"id": "v2.9", "status": "CURRENT",
			"links": []map[string]any{{"rel": "self", "href": s.url + "/image/v2/"}}}}})
	case "/compute", "/compute/v2.1":
		return ok(200, map[string]any{"versions": []map[string]any{{"id": "v2.1", "status": "CURRENT", "version": "2.79", "min_version": "2.1",
			"links": []map[string]any{{"rel": "self", "href": s.url + "/compute/v2.1/"}}}}})
	}
	if r.Header.Get("X-Auth-Token") != s.token {
		return &reply{status: 401, body: map[string]any{"error": map[string]any{"code": 401, "title": "Unauthorized",
			"message": "The request you have made requires authentication."}}}
	}
	if throttle {
		rep := novaError(429, "overLimit", "Rate limit exceeded.")
		rep.header = map[string]string{"Retry-After": "0"}
		return rep
	}
	if fail {
		return novaError(503, "computeFault", "The server is currently unavailable.")
	}
	var body map[string]json.RawMessage
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			return novaError(400, "badRequest", "Malformed request body: %v", err)
		}
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case strings.HasPrefix(path, "/compute/v2.1/"):
		return s.compute(r, parts[2:], body)
	case strings.HasPrefix(path, "/network/v2.0/"):
		return s.network(r, parts[2:], body)
	case strings.TrimSuffix(path, "/") == "/image/v2/images" && r.Method == http.MethodGet:
		return s.listImages(r)
	case len(parts) == 4 && strings.HasPrefix(path, "/image/v2/images/") && r.Method == http.MethodGet:
		name, found := Images[parts[3]]
		if !found {
			return &reply{status: 404, body: map[string]any{"message": "No image found with ID " + parts[3], "code": "404 Not Found", "title": "Not Found"}}
		}
		return ok(200, imageJSON(parts[3], name))
	}
	return novaError(404, "itemNotFound", "No such resource %s", path)
}

// flavorJSON is a flavor as Nova shows it (Compute API, "Flavors").
func (s *Server) flavorJSON(name string) map[string]any {
	f := sizes.Flavors[name]
	id := "flavor-" + name
	return map[string]any{"id": id, "name": name, "vcpus": f.VCPUs, "ram": int(f.MemoryGB * 1024), "disk": f.DiskGB,
		"OS-FLV-EXT-DATA:ephemeral": 0, "swap": "", "rxtx_factor": 1.0, "os-flavor-access:is_public": true, "OS-FLV-DISABLED:disabled": false,
		"links": []map[string]any{{"rel": "self", "href": s.url + "/compute/v2.1/flavors/" + id}}}
}

// identityVersion is Keystone's description of its v3 API (Identity API
// v3, "Version discovery").
func (s *Server) identityVersion() map[string]any {
	return map[string]any{"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
		"links":       []map[string]any{{"rel": "self", "href": s.url + "/identity/v3/"}},
		"media-types": []map[string]any{{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}}}
}

// auth implements POST /v3/auth/tokens with the password method.
func (s *Server) auth(r *http.Request) *reply {
	var req struct {
		Auth struct {
			Identity struct {
				Methods  []string `json:"methods"`
				Password struct {
					User struct {
						Name     string `json:"name"`
						Password string `json:"password"`
					} `json:"user"`
				} `json:"password"`
			} `json:"identity"`
			Scope struct {
				Project struct {
					Name string `json:"name"`
				} `json:"project"`
			} `json:"scope"`
		} `json:"auth"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return &reply{status: 400, body: map[string]any{"error": map[string]any{"code": 400, "title": "Bad Request", "message": err.Error()}}}
	}
	u := req.Auth.Identity.Password.User
	if u.Name != User || u.Password != Password || req.Auth.Scope.Project.Name != Project {
		return &reply{status: 401, body: map[string]any{"error": map[string]any{"code": 401, "title": "Unauthorized",
			"message": "The request you have made requires authentication."}}}
	}
	endpoint := func(path string) []map[string]any {
		return []map[string]any{{"id": newID(), "interface": "public", "region": Region, "region_id": Region, "url": s.url + path}}
	}
	body := map[string]any{"token": map[string]any{
		"methods": []string{"password"}, "expires_at": time.Now().Add(12 * time.Hour).UTC().Format("2006-01-02T15:04:05.000000Z"),
		"project": map[string]any{"id": "kumo-project", "name": Project, "domain": map[string]any{"id": "default", "name": Domain}},
		"user":    map[string]any{"id": "kumo-user", "name": User, "domain": map[string]any{"id": "default", "name": Domain}},
		"catalog": []map[string]any{
			{"type": "identity", "name": "keystone", "endpoints": endpoint("/identity/v3")},
			{"type": "compute", "name": "nova", "endpoints": endpoint("/compute/v2.1")},
			{"type": "network", "name": "neutron", "endpoints": endpoint("/network")},
			{"type": "image", "name": "glance", "endpoints": endpoint("/image")},
		},
	}}
	return &reply{status: 201, body: body, header: map[string]string{"X-Subject-Token": s.token}}
}

// imageJSON is an image as Glance shows it (Image API v2, "Show image";
// the fields Debian's Glance 25 gives, checked by the conformance test).
func imageJSON(id, name string) map[string]any {
	md5sum := md5.Sum([]byte(name))
	sha := sha512.Sum512([]byte(name))
	return map[string]any{"id": id, "name": name, "status": "active", "visibility": "public", "container_format": "bare",
		"disk_format": "qcow2", "min_disk": minDisk(name), "min_ram": 0, "protected": false, "tags": []string{},
		"checksum": hex.EncodeToString(md5sum[:]), "os_hash_algo": "sha512", "os_hash_value": hex.EncodeToString(sha[:]),
		"os_hidden": false, "owner": projectID, "size": imageSize, "virtual_size": imageSize, "stores": "file",
		"file": "/v2/images/" + id + "/file", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
		"self": "/v2/images/" + id, "schema": "/v2/schemas/image"}
}

// imageSize is every emulated image's size: a cloud image's (2.2 GB).
const imageSize = 2361393152

// projectID and userID are the emulator's one project and user.
const (
	projectID = "kumo-project"
	userID    = "kumo-user"
)

func (s *Server) listImages(r *http.Request) *reply {
	name := r.URL.Query().Get("name")
	out := []map[string]any{}
	for id, n := range Images {
		if name == "" || name == n {
			out = append(out, imageJSON(id, n))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["name"].(string) < out[j]["name"].(string) })
	first := "/v2/images"
	if r.URL.RawQuery != "" {
		first += "?" + r.URL.RawQuery
	}
	return ok(200, map[string]any{"images": out, "first": first, "schema": "/v2/schemas/images"})
}

// --- compute ---

func (s *Server) compute(r *http.Request, p []string, body map[string]json.RawMessage) *reply {
	switch {
	case len(p) == 1 && p[0] == "os-keypairs" && r.Method == http.MethodPost:
		return s.createKeypair(body)
	case len(p) == 1 && p[0] == "os-keypairs" && r.Method == http.MethodGet:
		s.mu.Lock()
		defer s.mu.Unlock()
		out := []map[string]any{}
		for name, pub := range s.keypairs {
			fingerprint := ""
			if key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pub)); err == nil {
				fingerprint = ssh.FingerprintLegacyMD5(key)
			}
			out = append(out, map[string]any{"keypair": map[string]any{"name": name, "public_key": pub, "fingerprint": fingerprint}})
		}
		sort.Slice(out, func(i, j int) bool {
			return out[i]["keypair"].(map[string]any)["name"].(string) < out[j]["keypair"].(map[string]any)["name"].(string)
		})
		return ok(200, map[string]any{"keypairs": out})
	case len(p) == 2 && p[0] == "os-keypairs" && r.Method == http.MethodDelete:
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.keypairs[p[1]]; !ok {
			return novaError(404, "itemNotFound", "Keypair %s not found for user kumo-user", p[1])
		}
		delete(s.keypairs, p[1])
		return ok(202, nil)
	case len(p) == 2 && p[0] == "flavors" && p[1] == "detail" && r.Method == http.MethodGet:
		out := []map[string]any{}
		for name := range sizes.Flavors {
			out = append(out, s.flavorJSON(name))
		}
		sort.Slice(out, func(i, j int) bool { return out[i]["name"].(string) < out[j]["name"].(string) })
		return ok(200, map[string]any{"flavors": out})
	case len(p) >= 2 && p[0] == "flavors" && r.Method == http.MethodGet:
		name := strings.TrimPrefix(p[1], "flavor-")
		if _, found := sizes.Flavors[name]; !found {
			return novaError(404, "itemNotFound", "Flavor %s could not be found.", p[1])
		}
		if len(p) == 3 && p[2] == "os-extra_specs" {
			return ok(200, map[string]any{"extra_specs": map[string]string{}})
		}
		if len(p) == 2 {
			return ok(200, map[string]any{"flavor": s.flavorJSON(name)})
		}
	case len(p) == 1 && p[0] == "servers" && r.Method == http.MethodPost:
		return s.createServer(body)
	case len(p) == 2 && p[0] == "servers" && p[1] == "detail":
		return s.listServers(r, true)
	case len(p) == 1 && p[0] == "servers" && r.Method == http.MethodGet:
		return s.listServers(r, false)
	case len(p) == 2 && p[0] == "servers" && r.Method == http.MethodGet:
		s.mu.Lock()
		defer s.mu.Unlock()
		srv := s.servers[p[1]]
		if srv == nil {
			return novaError(404, "itemNotFound", "Instance %s could not be found.", p[1])
		}
		return ok(200, map[string]any{"server": s.serverJSON(srv, false)})
	case len(p) == 2 && p[0] == "servers" && r.Method == http.MethodDelete:
		return s.deleteServer(p[1])
	case len(p) == 3 && p[0] == "servers" && p[2] == "action":
		return s.serverAction(p[1], body)
	}
	return novaError(404, "itemNotFound", "Unknown compute resource %s", strings.Join(p, "/"))
}

func (s *Server) createKeypair(body map[string]json.RawMessage) *reply {
	var kp struct {
		Name      string `json:"name"`
		PublicKey string `json:"public_key"`
	}
	if err := json.Unmarshal(body["keypair"], &kp); err != nil || kp.Name == "" {
		return novaError(400, "badRequest", "Invalid input for field/attribute keypair.")
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(kp.PublicKey))
	if err != nil {
		return novaError(400, "badRequest", "Keypair data is invalid: failed to generate fingerprint")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.keypairs[kp.Name]; dup {
		return novaError(409, "conflictingRequest", "Key pair '%s' already exists.", kp.Name)
	}
	s.keypairs[kp.Name] = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	// As microversion 2.1 (what kumo and the CLI ask for) shows it: no type.
	return ok(200, map[string]any{"keypair": map[string]any{"name": kp.Name, "public_key": kp.PublicKey,
		"fingerprint": ssh.FingerprintLegacyMD5(key), "user_id": userID}})
}

func (s *Server) createServer(body map[string]json.RawMessage) *reply {
	var req struct {
		Name           string              `json:"name"`
		ImageRef       string              `json:"imageRef"`
		FlavorRef      string              `json:"flavorRef"`
		KeyName        string              `json:"key_name"`
		Zone           string              `json:"availability_zone"`
		Metadata       map[string]string   `json:"metadata"`
		SecurityGroups []map[string]string `json:"security_groups"`
		Networks       json.RawMessage     `json:"networks"`
		BlockDevices   []struct {
			UUID       string `json:"uuid"`
			SourceType string `json:"source_type"`
			VolumeSize int    `json:"volume_size"`
		} `json:"block_device_mapping_v2"`
	}
	if err := json.Unmarshal(body["server"], &req); err != nil || req.Name == "" {
		return novaError(400, "badRequest", "Invalid input for field/attribute server.")
	}
	image := req.ImageRef
	for _, bd := range req.BlockDevices {
		if bd.SourceType == "image" {
			image = bd.UUID
		}
	}
	if _, ok := Images[image]; !ok {
		return novaError(400, "badRequest", "Can not find requested image")
	}
	flavor := strings.TrimPrefix(req.FlavorRef, "flavor-")
	f, found := sizes.Flavors[flavor]
	if !found {
		return novaError(400, "badRequest", "Flavor %s could not be found.", req.FlavorRef)
	}
	if need := minDisk(Images[image]); image == req.ImageRef && f.DiskGB > 0 && f.DiskGB < need {
		// Booted from the image on the flavor's disk (no volume).
		return novaError(400, "badRequest", "Flavor's disk is smaller than the minimum size specified in image metadata. "+
			"Flavor disk is %d bytes, minimum size is %d bytes.", f.DiskGB<<30, need<<30)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pub, hasKey := s.keypairs[req.KeyName]
	if req.KeyName != "" && !hasKey {
		return novaError(400, "badRequest", "Invalid key_name provided.")
	}
	var groups []string
	for _, g := range req.SecurityGroups {
		found, name := false, ""
		for _, sg := range s.groups {
			if sg.Name == g["name"] || sg.ID == g["name"] {
				found, name = true, sg.Name
			}
		}
		if !found {
			return novaError(400, "badRequest", "Security group %s not found for project kumo-project.", g["name"])
		}
		groups = append(groups, name)
	}
	meta := map[string]string{}
	for k, v := range req.Metadata {
		meta[k] = v
	}
	zone := req.Zone
	if zone == "" {
		zone = defaultZone
	}
	srv := &server{ID: newUUID(), Name: req.Name, Flavor: flavor, Image: image, KeyName: req.KeyName, Status: "BUILD",
		Zone: zone, Metadata: meta, Groups: groups, Network: "private", Created: time.Now()}
	if s.full(flavor, zone) {
		// Nova accepts the request; its scheduler then finds no host.
		srv.Status, srv.fault = "ERROR", "No valid host was found. There are not enough hosts available."
		s.servers[srv.ID] = srv
		s.order = append(s.order, srv.ID)
		return ok(202, s.created(srv, req.SecurityGroups))
	}
	s.servers[srv.ID] = srv
	s.order = append(s.order, srv.ID)
	go s.boot(srv, pub)
	return ok(202, s.created(srv, req.SecurityGroups))
}

// created is Nova's answer to a server create: its id, a generated
// password and links, whether the scheduler will find it a host or not.
func (s *Server) created(srv *server, groups []map[string]string) map[string]any {
	return map[string]any{"server": map[string]any{"id": srv.ID, "adminPass": newID()[:12], "OS-DCF:diskConfig": "MANUAL",
		"links": []map[string]any{{"rel": "self", "href": s.url + "/compute/v2.1/servers/" + srv.ID}}, "security_groups": groups}}
}

// loginOf is the user an image's cloud-init makes, as in the images
// Ubuntu and Debian publish for OpenStack.
func loginOf(imageID string) string {
	if strings.HasPrefix(Images[imageID], "debian") {
		return "debian"
	}
	return "ubuntu"
}

func (s *Server) boot(srv *server, pub string) {
	m, err := s.Boot(emulate.BootRequest{ID: srv.ID, Name: srv.Name, AuthorizedKey: pub, User: loginOf(srv.Image)})
	s.mu.Lock()
	defer s.mu.Unlock()
	if srv.Status == "DELETED" || srv.deleting {
		return
	}
	if err != nil {
		srv.Status, srv.fault = "ERROR", err.Error()
		return
	}
	srv.Status, srv.Port, srv.Addr = "ACTIVE", m.Port, m.IP
	s.filter(srv)
}

// filter has srv's floating IP let in what its security groups' ingress
// rules open to anywhere. s.mu is held.
func (s *Server) filter(srv *server) {
	if srv.Status != "ACTIVE" {
		return
	}
	var open []emulate.Open
	for _, g := range s.groups {
		if !slices.Contains(srv.Groups, g.Name) && !slices.Contains(srv.Groups, g.ID) {
			continue
		}
		for _, r := range g.Rules {
			port, _ := r["port_range_min"].(float64)
			protocol, _ := r["protocol"].(string)
			if r["direction"] == "ingress" && r["remote_group_id"] == nil && port != 0 {
				open = append(open, emulate.Open{Protocol: protocol, Port: int(port)})
			}
		}
	}
	s.FilterLater(srv.ID, open)
}

// liveOf counts the servers of flavor that take a host's room: not
// deleted, not in ERROR. s.mu is held.
// defaultZone is Nova's zone for servers that ask for none.
const defaultZone = "nova"

// full reports whether the compute hosts have no room for another server
// of flavor in zone: Capacity by flavor (every zone) or FLAVOR@ZONE.
func (s *Server) full(flavor, zone string) bool {
	for _, c := range []struct{ key, zone string }{{flavor, ""}, {flavor + "@" + zone, zone}} {
		if limit, has := s.opts.Capacity[c.key]; has && s.liveOf(flavor, c.zone) >= limit {
			return true
		}
	}
	return false
}

// liveOf counts the servers of flavor in zone ("": every zone) that take
// room on a host.
func (s *Server) liveOf(flavor, zone string) int {
	n := 0
	for _, srv := range s.servers {
		if srv.Flavor == flavor && (zone == "" || srv.Zone == zone) && srv.Status != "DELETED" && srv.Status != "ERROR" {
			n++
		}
	}
	return n
}

// Statuses counts the servers by status (ACTIVE, SHUTOFF, BUILD, ...),
// as the emulator holds them: what exists, seen from outside its clients.
func (s *Server) Statuses() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, srv := range s.servers {
		out[srv.Status]++
	}
	return out
}

func (s *Server) serverJSON(srv *server, inList bool) map[string]any {
	meta := map[string]string{}
	for k, v := range srv.Metadata {
		meta[k] = v
	}
	addrs := map[string]any{}
	if srv.Status == "ACTIVE" || srv.Status == "SHUTOFF" {
		mac := macOf(srv.ID)
		list := []map[string]any{{"addr": srv.Addr, "version": 4, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": mac}}
		for _, f := range s.fips {
			if f.PortID == "port-"+srv.ID {
				list = append(list, map[string]any{"addr": f.Address, "version": 4, "OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": mac})
			}
		}
		addrs[srv.Network] = list
		if srv.Status == "ACTIVE" && srv.Port != 22 {
			meta[providers.EmulatorPortKey] = strconv.Itoa(srv.Port)
		}
	}
	// Nova's extended attributes, as an admin sees them: the host, the
	// power and VM states.
	var host, launched any
	power, vm, zone := 0, "building", srv.Zone
	switch srv.Status {
	case "ACTIVE":
		power, vm = 1, "active"
	case "SHUTOFF":
		power, vm = 4, "stopped"
	case "ERROR":
		vm = "error"
	}
	if srv.Status == "ACTIVE" || srv.Status == "SHUTOFF" {
		host, launched = "emulated-host", srv.Created.UTC().Format("2006-01-02T15:04:05.000000")
	}
	out := map[string]any{"id": srv.ID, "name": srv.Name, "status": srv.Status, "metadata": meta, "addresses": addrs,
		"key_name": srv.KeyName, "flavor": map[string]any{"id": "flavor-" + srv.Flavor}, "image": map[string]any{"id": srv.Image},
		"created": srv.Created.UTC().Format(time.RFC3339), "updated": time.Now().UTC().Format(time.RFC3339),
		"tenant_id": projectID, "user_id": userID, "hostId": "emulated", "accessIPv4": "", "accessIPv6": "",
		"OS-DCF:diskConfig": "MANUAL", "OS-EXT-SRV-ATTR:host": host, "OS-EXT-SRV-ATTR:hypervisor_hostname": host,
		"OS-EXT-SRV-ATTR:instance_name": "instance-" + srv.ID[:8], "OS-EXT-STS:power_state": power, "OS-EXT-STS:task_state": taskState(srv),
		"OS-EXT-STS:vm_state": vm, "OS-SRV-USG:launched_at": launched, "OS-SRV-USG:terminated_at": nil,
		"config_drive": "", "os-extended-volumes:volumes_attached": []any{},
		"links": []map[string]any{{"rel": "self", "href": s.url + "/compute/v2.1/servers/" + srv.ID}}}
	if srv.Status == "ACTIVE" || srv.Status == "BUILD" {
		out["progress"] = 0 // Nova shows it only in the statuses it moves through
	}
	if srv.Status == "ERROR" {
		// A server the scheduler placed nowhere has no zone and no
		// network, so no security groups either.
		zone = ""
	} else {
		var groups []map[string]string
		for _, g := range srv.Groups {
			groups = append(groups, map[string]string{"name": g})
		}
		out["security_groups"] = groups
	}
	out["OS-EXT-AZ:availability_zone"] = zone
	// Nova shows why a server went to ERROR in the server's own view,
	// not in the list of servers.
	if srv.fault != "" && !inList {
		out["fault"] = map[string]any{"code": 500, "message": srv.fault, "created": srv.Created.UTC().Format(time.RFC3339),
			"details": "Traceback (most recent call last):\n  (the emulator's scheduler)\nNoValidHost: " + srv.fault}
	}
	return out
}

// taskState is what Nova is doing to the server: only deleting is
// modelled (builds and power changes show in its status).
func taskState(srv *server) any {
	if srv.deleting {
		return "deleting"
	}
	return nil
}

// macOf is a server's port's MAC address, from its id (OpenStack's
// fa:16:3e prefix).
func macOf(id string) string {
	h := strings.ReplaceAll(id, "-", "")
	return "fa:16:3e:" + h[0:2] + ":" + h[2:4] + ":" + h[4:6]
}

// listServers lists servers: in detail, or as Nova's summary (id, name,
// links), which clients use to find a server by name.
func (s *Server) listServers(r *http.Request, detail bool) *reply {
	name := r.URL.Query().Get("name")
	var re *regexp.Regexp
	if name != "" {
		var err error
		if re, err = regexp.Compile(name); err != nil {
			return novaError(400, "badRequest", "Invalid name filter %q", name)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for _, id := range s.order {
		srv := s.servers[id]
		if srv == nil || srv.Status == "DELETED" || (re != nil && !re.MatchString(srv.Name)) {
			continue
		}
		if detail {
			out = append(out, s.serverJSON(srv, true))
		} else {
			out = append(out, map[string]any{"id": srv.ID, "name": srv.Name,
				"links": []map[string]any{{"rel": "self", "href": s.url + "/compute/v2.1/servers/" + srv.ID}}})
		}
	}
	return ok(200, map[string]any{"servers": out})
}

func (s *Server) deleteServer(id string) *reply {
	s.mu.Lock()
	srv := s.servers[id]
	if srv == nil || srv.Status == "DELETED" {
		s.mu.Unlock()
		return novaError(404, "itemNotFound", "Instance %s could not be found.", id)
	}
	if srv.deleting {
		s.mu.Unlock()
		return ok(204, nil)
	}
	srv.deleting = true
	s.mu.Unlock()
	go func() {
		s.Remove(id)
		s.mu.Lock()
		srv.Status = "DELETED"
		delete(s.servers, id)
		s.mu.Unlock()
	}()
	return ok(204, nil)
}

func (s *Server) serverAction(id string, body map[string]json.RawMessage) *reply {
	s.mu.Lock()
	srv := s.servers[id]
	if srv == nil || srv.Status == "DELETED" {
		s.mu.Unlock()
		return novaError(404, "itemNotFound", "Instance %s could not be found.", id)
	}
	_, stop := body["os-stop"]
	_, start := body["os-start"]
	switch {
	case srv.deleting:
		s.mu.Unlock()
		return novaError(409, "conflictingRequest", "Cannot 'stop/start' instance %s while it is in task_state deleting", id)
	case stop && srv.Status != "ACTIVE", start && srv.Status != "SHUTOFF":
		st := srv.Status
		s.mu.Unlock()
		return novaError(409, "conflictingRequest", "Cannot 'stop/start' instance %s while it is in vm_state %s", id, strings.ToLower(st))
	case !stop && !start:
		s.mu.Unlock()
		return novaError(400, "badRequest", "Unsupported server action")
	}
	s.mu.Unlock()
	go func() {
		var m emulate.Machine
		if stop {
			s.PowerOff(id)
		} else {
			m, _ = s.PowerOn(id)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if stop {
			srv.Status = "SHUTOFF"
		} else {
			srv.Status, srv.Port = "ACTIVE", m.Port
			if m.IP != "" {
				srv.Addr = m.IP
			}
		}
	}()
	return ok(202, nil)
}

// OpenPorts lists, sorted, the TCP ports the security group called name
// lets in (tests).
func (s *Server) OpenPorts(name string) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, g := range s.groups {
		if g.Name != name {
			continue
		}
		for _, r := range g.Rules {
			if port, ok := r["port_range_min"].(float64); ok && r["protocol"] == "tcp" && r["direction"] == "ingress" {
				out = append(out, int(port))
			}
		}
	}
	sort.Ints(out)
	return out
}

// Ingress lists, sorted, the rules of the security group called name as
// "tcp 22", "udp 51820" or "from itself" (tests).
func (s *Server) Ingress(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, g := range s.groups {
		if g.Name != name {
			continue
		}
		for _, r := range g.Rules {
			if r["direction"] != "ingress" {
				continue // Neutron's default egress rules
			}
			port, _ := r["port_range_min"].(float64)
			switch remote, _ := r["remote_group_id"].(string); {
			case remote == g.ID:
				out = append(out, "from itself")
			case remote != "":
				out = append(out, "from "+remote)
			default:
				out = append(out, fmt.Sprintf("%v %d", r["protocol"], int(port)))
			}
		}
	}
	sort.Strings(out)
	return out
}

// KeyPairs lists the keypairs' names (tests).
func (s *Server) KeyPairs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name := range s.keypairs {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
