// Package ec2emu emulates the subset of the Amazon EC2 Query API that
// kumo's aws provider uses, on 127.0.0.1, so that aws recipes run end to
// end with no account: every instance is a real local node (providers/local)
// reachable over SSH.
//
// It follows the EC2 API Reference (API version 2016-11-15):
//   - "Query requests for Amazon EC2" and "Query API request structure":
//     form-encoded Action/Version and flattened lists (Name.1, Tag.1.Key).
//   - "Error codes for the Amazon EC2 API": the <Response><Errors> envelope
//     and the codes used below (MissingParameter, InvalidParameterValue,
//     InvalidAMIID.Malformed, InvalidAMIID.NotFound, InvalidKeyPair.*,
//     InvalidGroup.*, InvalidInstanceID.*, IdempotentParameterMismatch,
//     InstanceLimitExceeded,
//     RequestLimitExceeded, InternalError, AuthFailure, InvalidAction).
//   - "Ensure idempotency in Amazon EC2 API requests": a RunInstances
//     ClientToken returns the original reservation when repeated.
//   - The actions RunInstances, DescribeInstances, StopInstances,
//     StartInstances, TerminateInstances, ImportKeyPair, DescribeKeyPairs,
//     DeleteKeyPair, CreateSecurityGroup, DescribeSecurityGroups,
//     AuthorizeSecurityGroupIngress, DeleteSecurityGroup, DescribeImages,
//     DescribeInstanceTypes and DescribeRegions.
//
// One extension: each instance carries the tag kumo:emulator-ssh-port,
// the port of its node's SSH server, since all emulated instances share
// 127.0.0.1 (a real instance listens on 22).
package ec2emu

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kumo-dev/kumo/providers/aws/sizes"
	"github.com/kumo-dev/kumo/providers/emulate"
)

// Options configure an emulator.
type Options struct {
	Dir         string          // where the instances' nodes live
	Backing     emulate.Backing // what stands for instances ("": local nodes)
	Regions     []string        // valid regions (default: a few real ones)
	LocalServer []string        // node server command for the local nodes (tests)
	APIOnly     bool            // instances without nodes (see emulate.Base)
	// InstanceLimit is the account's limit of instances not terminated
	// (default 5,000).
	InstanceLimit int
	// Capacity is how many instances of a type may exist at once, in
	// every zone (t3.large) or in one (t3.large@us-east-1b), beyond which
	// RunInstances answers InsufficientInstanceCapacity, as a zone out of
	// that type does; a type not listed has no limit.
	Capacity map[string]int
	Now      func() time.Time
	// Faults: throttling answers RequestLimitExceeded, failures InternalError.
	emulate.Faults
}

// Server is an emulated EC2 endpoint.
type Server struct {
	*emulate.Base
	opts Options

	mu        sync.Mutex
	instances map[string]*instance
	order     []string
	tokens    map[string]*reservation
	keyPairs  map[string]string // name -> public key
	groups    map[string]*securityGroup
	images    []image
}

type instance struct {
	ID, ImageID, Type, KeyName, State, ClientToken, Reservation, Zone, SubnetID, PrivateIP string
	Lifecycle                                                                              string
	Tags                                                                                   map[string]string
	Groups                                                                                 []string
	Port                                                                                   int
	Addr                                                                                   string // the backing node's private address
	PublicAddr                                                                             string // its public address, on containers
	Launch                                                                                 time.Time
	err                                                                                    string
}

type reservation struct {
	ID        string
	Instances []string
	params    string
}

type securityGroup struct {
	ID, Name, Description string
	Rules                 []sgRule
}

// An sgRule lets in a protocol's port from anywhere, or (FromGroup, a
// group id; Protocol "-1") everything from that group's instances.
type sgRule struct {
	Protocol  string
	Port      int
	FromGroup string
}

// An image is an AMI; Login is the user its cloud-init makes.
type image struct{ ID, Name, Login string }

// Images are the AMIs every emulator offers. On containers each boots
// the container image (Debian) with its AMI's login user.
var Images = []image{
	{"ami-0a1b2c3d4e5f60001", "ubuntu/images/hvm-ssd-gp3/ubuntu-jammy-22.04-amd64-server-20260101", "ubuntu"},
	{"ami-0a1b2c3d4e5f60002", "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20260101", "ubuntu"},
	{"ami-0a1b2c3d4e5f60003", "debian-12-amd64-20260101", "admin"},
}

// New makes an emulator keeping its nodes in opts.Dir.
func New(opts Options) *Server {
	if len(opts.Regions) == 0 {
		opts.Regions = []string{"us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1", "ap-northeast-3"}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.InstanceLimit == 0 {
		opts.InstanceLimit = 5000
	}
	base := emulate.NewBase("ec2emu", opts.Dir, opts.Backing, opts.LocalServer, opts.Faults)
	base.APIOnly = opts.APIOnly
	return &Server{Base: base, opts: opts, instances: map[string]*instance{}, tokens: map[string]*reservation{},
		keyPairs: map[string]string{}, groups: map[string]*securityGroup{}, images: Images}
}

// Listen serves on addr (127.0.0.1:0 for any port) until ctx ends, and
// returns the endpoint URL.
func (s *Server) Listen(ctx context.Context, addr string) (string, error) {
	return emulate.Serve(ctx, addr, s)
}

// apiError is an EC2 error response.
type apiError struct {
	status        int
	code, message string
}

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status, code, fmt.Sprintf(format, args...)}
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.ServeCalls(w, r) {
		return
	}
	reqID := newID("")
	if err := r.ParseForm(); err != nil {
		writeError(w, reqID, errorf(400, "MalformedQueryString", "%v", err))
		return
	}
	throttle, fail := s.Admit(r.Form.Get("Action"))
	action := r.Form.Get("Action")
	if e := s.checkAuth(r); e != nil {
		writeError(w, reqID, e)
		return
	}
	switch {
	case throttle:
		writeError(w, reqID, errorf(503, "RequestLimitExceeded", "Request limit exceeded."))
		return
	case fail:
		writeError(w, reqID, errorf(500, "InternalError", "An internal error has occurred."))
		return
	}
	q := query(r.Form)
	var body any
	var e *apiError
	switch action {
	case "DescribeRegions":
		body, e = s.describeRegions(q)
	case "DescribeInstanceTypes":
		body, e = s.describeInstanceTypes(q)
	case "DescribeImages":
		body, e = s.describeImages(q)
	case "ImportKeyPair":
		body, e = s.importKeyPair(q)
	case "DescribeKeyPairs":
		body, e = s.describeKeyPairs(q)
	case "DeleteKeyPair":
		body, e = s.deleteKeyPair(q)
	case "CreateSecurityGroup":
		body, e = s.createSecurityGroup(q)
	case "DescribeSecurityGroups":
		body, e = s.describeSecurityGroups(q)
	case "AuthorizeSecurityGroupIngress":
		body, e = s.authorizeIngress(q)
	case "DeleteSecurityGroup":
		body, e = s.deleteSecurityGroup(q)
	case "RunInstances":
		body, e = s.runInstances(q)
	case "DescribeInstances":
		body, e = s.describeInstances(q)
	case "StopInstances":
		body, e = s.changeState(q, "stop")
	case "StartInstances":
		body, e = s.changeState(q, "start")
	case "TerminateInstances":
		body, e = s.changeState(q, "terminate")
	default:
		e = errorf(400, "InvalidAction", "The action %s is not valid for this web service.", action)
	}
	if e != nil {
		writeError(w, reqID, e)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	out, err := xml.Marshal(body)
	if err != nil {
		writeError(w, reqID, errorf(500, "InternalError", "%v", err))
		return
	}
	// Every response names the namespace and carries a request id.
	text := strings.Replace(string(out), ">", ` xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>`+reqID+`</requestId>`, 1)
	fmt.Fprint(w, xml.Header+text)
}

var credentialRE = regexp.MustCompile(`Credential=([^/]+)/[^/]+/([^/]+)/ec2/aws4_request`)

// AccessKeyID is the one access key the emulator knows (kumo emulate
// prints it, with the same text as the secret key).
const AccessKeyID = "kumo-emulator"

// checkAuth wants a SigV4 Authorization header of the emulator's access
// key, scoped to a known region. (Signatures are not verified.)
func (s *Server) checkAuth(r *http.Request) *apiError {
	m := credentialRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil || m[1] != AccessKeyID {
		return errorf(401, "AuthFailure", "AWS was not able to validate the provided access credentials")
	}
	for _, region := range s.opts.Regions {
		if m[2] == region {
			return nil
		}
	}
	return errorf(401, "AuthFailure", "Credential should be scoped to a valid region, not '%s'.", m[2])
}

func writeError(w http.ResponseWriter, reqID string, e *apiError) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.status)
	type errXML struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	out, _ := xml.Marshal(struct {
		XMLName   xml.Name `xml:"Response"`
		Errors    []errXML `xml:"Errors>Error"`
		RequestID string   `xml:"RequestID"`
	}{Errors: []errXML{{e.code, e.message}}, RequestID: reqID})
	fmt.Fprint(w, xml.Header+string(out))
}

// query reads the flattened lists of the EC2 query protocol.
type query url.Values

func (q query) get(k string) string { return url.Values(q).Get(k) }

// list returns the values of k.1, k.2, ...
func (q query) list(k string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := q[k+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

// structs returns the members k.1.*, k.2.*, ... as sub-queries.
func (q query) structs(k string) []query {
	var out []query
	for i := 1; ; i++ {
		prefix := k + "." + strconv.Itoa(i) + "."
		sub := query{}
		for key, v := range q {
			if rest, ok := strings.CutPrefix(key, prefix); ok {
				sub[rest] = v
			}
		}
		if len(sub) == 0 {
			return out
		}
		out = append(out, sub)
	}
}

// filters reads Filter.N.Name / Filter.N.Value.M.
func (q query) filters() map[string][]string {
	out := map[string][]string{}
	for _, f := range q.structs("Filter") {
		out[f.get("Name")] = f.list("Value")
	}
	return out
}

// newID is a resource id as EC2 makes them: the prefix and 17 hex digits.
func newID(prefix string) string {
	b := make([]byte, 9)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)[:17]
}

// validID reports whether id is an EC2 id of the kind prefix names: the
// prefix and 8 (older resources) or 17 hex digits. EC2 answers a
// malformed id with *.Malformed, a well-formed unknown one with
// *.NotFound.
func validID(prefix, id string) bool {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || len(rest) != 8 && len(rest) != 17 {
		return false
	}
	for _, c := range rest {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// --- regions, types, images ---

func (s *Server) describeRegions(q query) (any, *apiError) {
	type region struct {
		Name     string `xml:"regionName"`
		Endpoint string `xml:"regionEndpoint"`
	}
	var out []region
	want := q.list("RegionName")
	for _, r := range s.opts.Regions {
		if len(want) == 0 || contains(want, r) {
			out = append(out, region{r, "ec2." + r + ".amazonaws.com"})
		}
	}
	return struct {
		XMLName xml.Name `xml:"DescribeRegionsResponse"`
		Regions []region `xml:"regionInfo>item"`
	}{Regions: out}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Server) describeInstanceTypes(q query) (any, *apiError) {
	type itype struct {
		Type  string `xml:"instanceType"`
		VCPUs int    `xml:"vCpuInfo>defaultVCpus"`
		MiB   int    `xml:"memoryInfo>sizeInMiB"`
	}
	var out []itype
	want := q.list("InstanceType")
	for _, t := range want {
		size, ok := sizes.InstanceTypes[t]
		if !ok {
			return nil, errorf(400, "InvalidInstanceType", "The following supplied instance types do not exist: [%s]", t)
		}
		out = append(out, itype{t, size.VCPUs, int(size.MemoryGB * 1024)})
	}
	if len(want) == 0 {
		for t, size := range sizes.InstanceTypes {
			out = append(out, itype{t, size.VCPUs, int(size.MemoryGB * 1024)})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	}
	return struct {
		XMLName xml.Name `xml:"DescribeInstanceTypesResponse"`
		Types   []itype  `xml:"instanceTypeSet>item"`
	}{Types: out}, nil
}

func (s *Server) describeImages(q query) (any, *apiError) {
	type img struct {
		ID    string `xml:"imageId"`
		Name  string `xml:"name"`
		State string `xml:"imageState"`
		Date  string `xml:"creationDate"`
	}
	ids := q.list("ImageId")
	for _, id := range ids {
		if !validID("ami-", id) {
			return nil, errorf(400, "InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", id)
		}
	}
	names := q.filters()["name"]
	var out []img
	for _, im := range s.images {
		if (len(ids) == 0 || contains(ids, im.ID)) && (len(names) == 0 || matchAny(names, im.Name)) {
			out = append(out, img{im.ID, im.Name, "available", "2026-01-01T00:00:00.000Z"})
		}
	}
	if len(ids) > 0 && len(out) < len(ids) {
		return nil, errorf(400, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist", strings.Join(ids, ", "))
	}
	return struct {
		XMLName xml.Name `xml:"DescribeImagesResponse"`
		Images  []img    `xml:"imagesSet>item"`
	}{Images: out}, nil
}

// matchAny matches EC2 filter values, where * is a wildcard.
func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		re := "^" + strings.ReplaceAll(regexp.QuoteMeta(p), `\*`, ".*") + "$"
		if ok, _ := regexp.MatchString(re, s); ok {
			return true
		}
	}
	return false
}

// --- key pairs ---

func (s *Server) importKeyPair(q query) (any, *apiError) {
	name, material := q.get("KeyName"), q.get("PublicKeyMaterial")
	if name == "" || material == "" {
		return nil, errorf(400, "MissingParameter", "The request must contain the parameter KeyName and PublicKeyMaterial")
	}
	pub, err := base64.StdEncoding.DecodeString(material)
	if err != nil {
		pub = []byte(material)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		return nil, errorf(400, "InvalidKey.Format", "Key is not in valid OpenSSH public key format")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keyPairs[name]; ok {
		return nil, errorf(400, "InvalidKeyPair.Duplicate", "The keypair '%s' already exists.", name)
	}
	s.keyPairs[name] = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	return struct {
		XMLName     xml.Name `xml:"ImportKeyPairResponse"`
		Name        string   `xml:"keyName"`
		Fingerprint string   `xml:"keyFingerprint"`
		ID          string   `xml:"keyPairId"`
	}{Name: name, Fingerprint: ssh.FingerprintSHA256(key), ID: "key-" + name}, nil
}

func (s *Server) describeKeyPairs(q query) (any, *apiError) {
	type kp struct {
		Name string `xml:"keyName"`
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []kp
	names := q.list("KeyName")
	if len(names) == 0 { // no names: every key pair of the account
		for name := range s.keyPairs {
			names = append(names, name)
		}
		sort.Strings(names)
	}
	for _, name := range names {
		if _, ok := s.keyPairs[name]; !ok {
			return nil, errorf(400, "InvalidKeyPair.NotFound", "The key pair '%s' does not exist", name)
		}
		out = append(out, kp{name})
	}
	return struct {
		XMLName xml.Name `xml:"DescribeKeyPairsResponse"`
		Keys    []kp     `xml:"keySet>item"`
	}{Keys: out}, nil
}

func (s *Server) deleteKeyPair(q query) (any, *apiError) {
	s.mu.Lock()
	delete(s.keyPairs, q.get("KeyName")) // deleting a missing key pair succeeds, as on EC2
	s.mu.Unlock()
	return returnTrue("DeleteKeyPairResponse"), nil
}

func returnTrue(name string) any {
	return struct {
		XMLName xml.Name
		Return  bool `xml:"return"`
	}{XMLName: xml.Name{Local: name}, Return: true}
}

// --- security groups ---

func (s *Server) createSecurityGroup(q query) (any, *apiError) {
	name, desc := q.get("GroupName"), q.get("GroupDescription")
	if name == "" || desc == "" {
		return nil, errorf(400, "MissingParameter", "The request must contain the parameter GroupName and GroupDescription")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.groups {
		if g.Name == name {
			return nil, errorf(400, "InvalidGroup.Duplicate", "The security group '%s' already exists", name)
		}
	}
	g := &securityGroup{ID: newID("sg-"), Name: name, Description: desc}
	s.groups[g.ID] = g
	return struct {
		XMLName xml.Name `xml:"CreateSecurityGroupResponse"`
		Return  bool     `xml:"return"`
		ID      string   `xml:"groupId"`
	}{Return: true, ID: g.ID}, nil
}

func (s *Server) describeSecurityGroups(q query) (any, *apiError) {
	type permission struct {
		Protocol string   `xml:"ipProtocol"`
		From     int      `xml:"fromPort"`
		To       int      `xml:"toPort"`
		Ranges   []string `xml:"ipRanges>item>cidrIp"`
		Groups   []string `xml:"groups>item>groupId"`
	}
	type sg struct {
		ID          string       `xml:"groupId"`
		Name        string       `xml:"groupName"`
		Desc        string       `xml:"groupDescription"`
		Owner       string       `xml:"ownerId"`
		Permissions []permission `xml:"ipPermissions>item"`
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	names := append(q.list("GroupName"), q.filters()["group-name"]...)
	ids := q.list("GroupId")
	var out []sg
	for _, g := range s.groups {
		if (len(names) == 0 || contains(names, g.Name)) && (len(ids) == 0 || contains(ids, g.ID)) {
			x := sg{ID: g.ID, Name: g.Name, Desc: g.Description, Owner: "000000000000"}
			for _, r := range g.Rules {
				if r.FromGroup != "" {
					x.Permissions = append(x.Permissions, permission{Protocol: "-1", Groups: []string{r.FromGroup}})
					continue
				}
				x.Permissions = append(x.Permissions, permission{r.Protocol, r.Port, r.Port, []string{"0.0.0.0/0"}, nil})
			}
			out = append(out, x)
		}
	}
	if len(q.list("GroupName")) > 0 && len(out) == 0 {
		return nil, errorf(400, "InvalidGroup.NotFound", "The security group '%s' does not exist", strings.Join(names, ", "))
	}
	return struct {
		XMLName xml.Name `xml:"DescribeSecurityGroupsResponse"`
		Groups  []sg     `xml:"securityGroupInfo>item"`
	}{Groups: out}, nil
}

func (s *Server) authorizeIngress(q query) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[q.get("GroupId")]
	for _, x := range s.groups {
		if name := q.get("GroupName"); name != "" && x.Name == name {
			g = x // the default VPC's groups may be named
		}
	}
	if g == nil {
		return nil, errorf(400, "InvalidGroup.NotFound", "The security group '%s' does not exist", q.get("GroupId")+q.get("GroupName"))
	}
	// Like EC2, a request with one rule the group has already is
	// refused whole.
	var add []sgRule
	for _, p := range q.structs("IpPermissions") {
		r := sgRule{Protocol: p.get("IpProtocol")}
		if pairs := p.structs("Groups"); len(pairs) > 0 {
			r.FromGroup = pairs[0].get("GroupId")
		} else if r.Port, _ = strconv.Atoi(p.get("FromPort")); r.Protocol != "tcp" && r.Protocol != "udp" {
			return nil, errorf(400, "InvalidParameterValue", "Invalid value '%s' for IP protocol. Unknown protocol.", r.Protocol)
		}
		if slices.Contains(g.Rules, r) {
			if r.FromGroup != "" {
				return nil, errorf(400, "InvalidPermission.Duplicate", "the specified rule \"peer: %s, ALL, ALLOW\" already exists", r.FromGroup)
			}
			return nil, errorf(400, "InvalidPermission.Duplicate", "the specified rule \"peer: 0.0.0.0/0, %s, from port: %d, to port: %d, ALLOW\" already exists", strings.ToUpper(r.Protocol), r.Port, r.Port)
		}
		add = append(add, r)
	}
	g.Rules = append(g.Rules, add...)
	s.filterGroup(g.ID)
	return returnTrue("AuthorizeSecurityGroupIngressResponse"), nil
}

// filterGroup has the public addresses of the running instances in
// group let in what their security groups say from now on. s.mu is held.
func (s *Server) filterGroup(group string) {
	for _, inst := range s.instances {
		if inst.State == "running" && contains(inst.Groups, group) {
			s.filterOne(inst)
		}
	}
}

// filterOne has inst's public address let in what its groups' rules say.
// s.mu is held.
func (s *Server) filterOne(inst *instance) {
	var open []emulate.Open
	for _, gid := range inst.Groups {
		if g := s.groups[gid]; g != nil {
			for _, r := range g.Rules {
				if r.FromGroup == "" {
					open = append(open, emulate.Open{Protocol: r.Protocol, Port: r.Port})
				}
			}
		}
	}
	s.FilterLater(inst.ID, open)
}

func (s *Server) deleteSecurityGroup(q query) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := q.get("GroupId")
	if s.groups[id] == nil {
		return nil, errorf(400, "InvalidGroup.NotFound", "The security group '%s' does not exist", id)
	}
	for _, inst := range s.instances {
		if inst.State != "terminated" && contains(inst.Groups, id) {
			return nil, errorf(400, "DependencyViolation", "resource %s has a dependent object", id)
		}
	}
	delete(s.groups, id)
	return returnTrue("DeleteSecurityGroupResponse"), nil
}

// OpenPorts lists, sorted, the TCP ports the security group called name
// lets in (tests).
func (s *Server) OpenPorts(name string) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, g := range s.groups {
		if g.Name == name {
			for _, r := range g.Rules {
				if r.Protocol == "tcp" {
					out = append(out, r.Port)
				}
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
			switch {
			case r.FromGroup == g.ID:
				out = append(out, "from itself")
			case r.FromGroup != "":
				out = append(out, "from "+r.FromGroup)
			default:
				out = append(out, fmt.Sprintf("%s %d", r.Protocol, r.Port))
			}
		}
	}
	sort.Strings(out)
	return out
}

// KeyPairs lists the key pairs' names (tests).
func (s *Server) KeyPairs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name := range s.keyPairs {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
