package ec2emu

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/providers/aws/sizes"
	"github.com/kumo-dev/kumo/providers/emulate"
)

// Instance states and their codes, per the EC2 API Reference (InstanceState).
var stateCodes = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

type instanceXML struct {
	ID          string   `xml:"instanceId"`
	ImageID     string   `xml:"imageId"`
	StateCode   int      `xml:"instanceState>code"`
	StateName   string   `xml:"instanceState>name"`
	Type        string   `xml:"instanceType"`
	Zone        string   `xml:"placement>availabilityZone"`
	KeyName     string   `xml:"keyName,omitempty"`
	Launch      string   `xml:"launchTime"`
	PrivateIP   string   `xml:"privateIpAddress,omitempty"`
	PublicIP    string   `xml:"ipAddress,omitempty"`
	SubnetID    string   `xml:"subnetId,omitempty"`
	ClientToken string   `xml:"clientToken,omitempty"`
	Lifecycle   string   `xml:"instanceLifecycle,omitempty"`
	Groups      []string `xml:"groupSet>item>groupId"`
	Tags        []tagXML `xml:"tagSet>item"`
	Reason      string   `xml:"stateReason>message,omitempty"`
}

type tagXML struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type reservationXML struct {
	ID        string        `xml:"reservationId"`
	Owner     string        `xml:"ownerId"`
	Instances []instanceXML `xml:"instancesSet>item"`
}

func (inst *instance) xml() instanceXML {
	x := instanceXML{ID: inst.ID, ImageID: inst.ImageID, StateCode: stateCodes[inst.State], StateName: inst.State, Type: inst.Type, Zone: inst.Zone,
		KeyName: inst.KeyName, Launch: inst.Launch.UTC().Format("2006-01-02T15:04:05.000Z"), SubnetID: inst.SubnetID,
		ClientToken: inst.ClientToken, Lifecycle: inst.Lifecycle, Groups: inst.Groups, Reason: inst.err}
	if inst.State == "running" {
		// On containers, the node's own addresses. On local nodes both are
		// the node's loopback address: nothing translates between them.
		x.PrivateIP, x.PublicIP = inst.Addr, inst.Addr
		if inst.PublicAddr != "" {
			x.PublicIP = inst.PublicAddr
		} else if inst.PrivateIP != "" {
			x.PrivateIP = inst.PrivateIP
		}
	}
	for k, v := range inst.Tags {
		x.Tags = append(x.Tags, tagXML{k, v})
	}
	if inst.Port > 0 && inst.Port != 22 && inst.State == "running" {
		x.Tags = append(x.Tags, tagXML{providers.EmulatorPortKey, strconv.Itoa(inst.Port)})
	}
	return x
}

func (s *Server) runInstances(q query) (any, *apiError) {
	imageID, itype := q.get("ImageId"), q.get("InstanceType")
	minCount, err1 := strconv.Atoi(q.get("MinCount"))
	maxCount, err2 := strconv.Atoi(q.get("MaxCount"))
	switch {
	case q.get("MinCount") == "" || q.get("MaxCount") == "":
		return nil, errorf(400, "MissingParameter", "The request must contain the parameter MinCount and MaxCount")
	case err1 != nil || err2 != nil || minCount < 1 || maxCount < minCount:
		return nil, errorf(400, "InvalidParameterValue", "Invalid value for MinCount/MaxCount")
	case imageID == "":
		return nil, errorf(400, "MissingParameter", "The request must contain the parameter ImageId")
	case !validID("ami-", imageID):
		return nil, errorf(400, "InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", imageID)
	}
	if itype == "" {
		itype = "m1.small" // EC2's default, which this emulator does not offer
	}
	if _, ok := sizes.InstanceTypes[itype]; !ok {
		return nil, errorf(400, "InvalidParameterValue", "Invalid value '%s' for InstanceType.", itype)
	}
	found := false
	for _, im := range s.images {
		found = found || im.ID == imageID
	}
	if !found {
		return nil, errorf(400, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist", imageID)
	}
	token := q.get("ClientToken")
	params := strings.Join([]string{imageID, itype, strconv.Itoa(maxCount), q.get("KeyName")}, "|")

	s.mu.Lock()
	defer s.mu.Unlock()
	if token != "" {
		if res, ok := s.tokens[token]; ok {
			if res.params != params {
				return nil, errorf(400, "IdempotentParameterMismatch", "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
			}
			return s.reservationResponse("RunInstancesResponse", res), nil
		}
	}
	keyName := q.get("KeyName")
	pub, ok := s.keyPairs[keyName]
	if keyName != "" && !ok {
		return nil, errorf(400, "InvalidKeyPair.NotFound", "The key pair '%s' does not exist", keyName)
	}
	groups := q.list("SecurityGroupId")
	for _, g := range groups {
		if s.groups[g] == nil {
			return nil, errorf(400, "InvalidGroup.NotFound", "The security group '%s' does not exist", g)
		}
	}
	tags := map[string]string{}
	for _, spec := range q.structs("TagSpecification") {
		if spec.get("ResourceType") == "instance" {
			for _, t := range spec.structs("Tag") {
				tags[t.get("Key")] = t.get("Value")
			}
		}
	}
	lifecycle := ""
	if q.get("InstanceMarketOptions.MarketType") == "spot" {
		lifecycle = "spot"
	}
	// As EC2 does: as many as MaxCount that fit the account's limit, or
	// InstanceLimitExceeded when not even MinCount fit.
	room := s.opts.InstanceLimit - s.live("", "")
	if minCount > room {
		return nil, errorf(400, "InstanceLimitExceeded", "You have requested more instances (%d) than your current instance limit of %d allows for the specified instance type.", minCount, s.opts.InstanceLimit)
	}
	// The capacity of the type, in every zone (TYPE) and in the zone
	// asked for (TYPE@ZONE): EC2 answers with a server error.
	zone := q.get("Placement.AvailabilityZone")
	if zone == "" {
		zone = defaultZone
	}
	for _, c := range []struct{ key, zone string }{{itype, ""}, {itype + "@" + zone, zone}} {
		limit, ok := s.opts.Capacity[c.key]
		if !ok {
			continue
		}
		free := limit - s.live(itype, c.zone)
		if minCount > free {
			return nil, errorf(500, "InsufficientInstanceCapacity", "We currently do not have sufficient %s capacity in the Availability Zone you requested (%s). Our system will be working on provisioning additional capacity. You can currently get %s capacity by not specifying an Availability Zone in your request or choosing a different instance type.", itype, zone, itype)
		}
		room = min(room, free)
	}
	res := &reservation{ID: newID("r-"), params: params}
	for i := 0; i < min(maxCount, room); i++ {
		inst := &instance{ID: newID("i-"), ImageID: imageID, Type: itype, KeyName: keyName, State: "pending", ClientToken: token,
			Reservation: res.ID, Zone: zone, SubnetID: q.get("SubnetId"), PrivateIP: q.get("PrivateIpAddress"), Lifecycle: lifecycle,
			Tags: copyMap(tags), Groups: groups, Launch: s.opts.Now()}
		s.instances[inst.ID] = inst
		s.order = append(s.order, inst.ID)
		res.Instances = append(res.Instances, inst.ID)
		go s.boot(inst, pub, s.loginOf(imageID))
	}
	if token != "" {
		s.tokens[token] = res
	}
	return s.reservationResponse("RunInstancesResponse", res), nil
}

// defaultZone is where instances go when RunInstances names no zone.
const defaultZone = "us-east-1a"

// live counts the instances not terminated, of instance type itype ("":
// of every type) in zone ("": in every zone); s.mu held.
func (s *Server) live(itype, zone string) int {
	n := 0
	for _, inst := range s.instances {
		if inst.State != "terminated" && (itype == "" || inst.Type == itype) && (zone == "" || inst.Zone == zone) {
			n++
		}
	}
	return n
}

func copyMap(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// loginOf is the login user of an AMI.
func (s *Server) loginOf(imageID string) string {
	for _, im := range s.images {
		if im.ID == imageID {
			return im.Login
		}
	}
	return "ubuntu"
}

// boot makes the instance's node, named after its id; the instance runs
// once it answers.
func (s *Server) boot(inst *instance, authorizedKey, login string) {
	m, err := s.Boot(emulate.BootRequest{ID: inst.ID, Name: inst.ID, AuthorizedKey: authorizedKey, User: login, Public: true})
	s.mu.Lock()
	defer s.mu.Unlock()
	if inst.State == "terminated" || inst.State == "shutting-down" {
		return
	}
	if err != nil {
		inst.State, inst.err = "terminated", "Server.InternalError: "+err.Error()
		return
	}
	inst.State, inst.Port, inst.Addr, inst.PublicAddr = "running", m.Port, m.IP, m.Public
	s.filterOne(inst)
}

func (s *Server) reservationResponse(name string, res *reservation) any {
	r := reservationXML{ID: res.ID, Owner: "000000000000"}
	for _, id := range res.Instances {
		r.Instances = append(r.Instances, s.instances[id].xml())
	}
	return struct {
		XMLName xml.Name
		reservationXML
	}{xml.Name{Local: name}, r}
}

func (s *Server) describeInstances(q query) (any, *apiError) {
	ids := q.list("InstanceId")
	filters := q.filters()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		switch {
		case !validID("i-", id):
			return nil, errorf(400, "InvalidInstanceID.Malformed", "Invalid id: \"%s\"", id)
		case s.instances[id] == nil:
			return nil, errorf(400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		}
	}
	byRes := map[string]*reservationXML{}
	var order []string
	for _, id := range s.order {
		inst := s.instances[id]
		if len(ids) > 0 && !contains(ids, id) || !inst.matches(filters) {
			continue
		}
		r := byRes[inst.Reservation]
		if r == nil {
			r = &reservationXML{ID: inst.Reservation, Owner: "000000000000"}
			byRes[inst.Reservation] = r
			order = append(order, inst.Reservation)
		}
		r.Instances = append(r.Instances, inst.xml())
	}
	var out []reservationXML
	for _, id := range order {
		out = append(out, *byRes[id])
	}
	return struct {
		XMLName      xml.Name         `xml:"DescribeInstancesResponse"`
		Reservations []reservationXML `xml:"reservationSet>item"`
	}{Reservations: out}, nil
}

// matches applies the DescribeInstances filters kumo uses.
func (inst *instance) matches(filters map[string][]string) bool {
	for name, values := range filters {
		var have string
		switch {
		case name == "instance-state-name":
			have = inst.State
		case name == "instance-id":
			have = inst.ID
		case name == "client-token":
			have = inst.ClientToken
		case strings.HasPrefix(name, "tag:"):
			v, ok := inst.Tags[strings.TrimPrefix(name, "tag:")]
			if !ok {
				return false
			}
			have = v
		default:
			continue // filters the emulator does not know narrow nothing
		}
		if !matchAny(values, have) {
			return false
		}
	}
	return true
}

// changeState stops, starts or terminates instances: their local nodes
// are powered off, on, or deleted.
func (s *Server) changeState(q query, op string) (any, *apiError) {
	ids := q.list("InstanceId")
	if len(ids) == 0 {
		return nil, errorf(400, "MissingParameter", "The request must contain the parameter InstanceId")
	}
	type change struct {
		ID       string `xml:"instanceId"`
		CurCode  int    `xml:"currentState>code"`
		CurName  string `xml:"currentState>name"`
		PrevCode int    `xml:"previousState>code"`
		PrevName string `xml:"previousState>name"`
	}
	s.mu.Lock()
	var insts []*instance
	for _, id := range ids {
		if !validID("i-", id) {
			s.mu.Unlock()
			return nil, errorf(400, "InvalidInstanceID.Malformed", "Invalid id: \"%s\"", id)
		}
		inst := s.instances[id]
		if inst == nil {
			s.mu.Unlock()
			return nil, errorf(400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		}
		if op != "terminate" && inst.State == "terminated" {
			s.mu.Unlock()
			return nil, errorf(400, "IncorrectInstanceState", "The instance '%s' is not in a state from which it can be %sed.", id, op)
		}
		insts = append(insts, inst)
	}
	var out []change
	for _, inst := range insts {
		prev := inst.State
		next := map[string]string{"stop": "stopping", "start": "pending", "terminate": "shutting-down"}[op]
		if prev == "terminated" || (op == "stop" && prev == "stopped") || (op == "start" && prev == "running") {
			next = prev
		}
		inst.State = next
		out = append(out, change{inst.ID, stateCodes[next], next, stateCodes[prev], prev})
		if next != prev {
			go s.finishChange(inst, op)
		}
	}
	s.mu.Unlock()
	name := map[string]string{"stop": "StopInstancesResponse", "start": "StartInstancesResponse", "terminate": "TerminateInstancesResponse"}[op]
	return struct {
		XMLName xml.Name
		Changes []change `xml:"instancesSet>item"`
	}{xml.Name{Local: name}, out}, nil
}

func (s *Server) finishChange(inst *instance, op string) {
	var err error
	var m emulate.Machine
	switch op {
	case "stop":
		err = s.PowerOff(inst.ID)
	case "start":
		m, err = s.PowerOn(inst.ID)
	case "terminate":
		err = s.Remove(inst.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		inst.err = fmt.Sprintf("Server.InternalError: %v", err)
	}
	switch op {
	case "stop":
		inst.State = "stopped"
	case "start":
		inst.State, inst.Port = "running", m.Port
		if m.IP != "" {
			inst.Addr, inst.PublicAddr = m.IP, m.Public
		}
	case "terminate":
		inst.State = "terminated"
	}
}

// States counts the instances by state, as the emulator holds them:
// what exists, seen from outside its clients.
func (s *Server) States() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, inst := range s.instances {
		out[inst.State]++
	}
	return out
}

// WaitIdle waits until no instance is in a transitional state (tests).
func (s *Server) WaitIdle(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		busy := false
		for _, inst := range s.instances {
			switch inst.State {
			case "pending", "stopping", "shutting-down":
				busy = true
			}
		}
		s.mu.Unlock()
		if !busy {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
