package osemu

import (
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// network serves the Neutron v2.0 resources kumo uses.
func (s *Server) network(r *http.Request, p []string, body map[string]json.RawMessage) *reply {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(p) == 1 && p[0] == "networks" && r.Method == http.MethodGet:
		out := []map[string]any{}
		for _, n := range s.networks {
			if name := q.Get("name"); name != "" && name != n.Name {
				continue
			}
			if id := q.Get("id"); id != "" && id != n.ID {
				continue
			}
			if ext := q.Get("router:external"); ext != "" && (ext == "true") != n.External {
				continue
			}
			out = append(out, n.json())
		}
		return ok(200, map[string]any{"networks": out})

	case len(p) == 2 && p[0] == "networks" && r.Method == http.MethodGet:
		for _, n := range s.networks {
			if n.ID == p[1] {
				return ok(200, map[string]any{"network": n.json()})
			}
		}
		return neutronError(404, "NetworkNotFound", "Network %s could not be found.", p[1])

	case len(p) == 1 && p[0] == "subnets" && r.Method == http.MethodGet:
		out := []map[string]any{}
		for _, n := range s.networks {
			if id := q.Get("network_id"); id != "" && id != n.ID {
				continue
			}
			if name := q.Get("name"); name != "" && name != n.Name+"-v4" {
				continue
			}
			out = append(out, n.subnetJSON())
		}
		return ok(200, map[string]any{"subnets": out})

	case len(p) == 2 && p[0] == "subnets" && r.Method == http.MethodGet:
		for _, n := range s.networks {
			if n.SubnetID == p[1] {
				return ok(200, map[string]any{"subnet": n.subnetJSON()})
			}
		}
		return neutronError(404, "SubnetNotFound", "Subnet %s could not be found.", p[1])

	case len(p) == 1 && p[0] == "ports" && r.Method == http.MethodGet:
		out := []map[string]any{}
		for _, id := range s.order {
			srv := s.servers[id]
			if srv == nil || srv.Status == "DELETED" || srv.Status == "ERROR" {
				continue
			}
			if dev := q.Get("device_id"); dev != "" && dev != id {
				continue
			}
			out = append(out, s.portJSON(srv))
		}
		return ok(200, map[string]any{"ports": out})

	case len(p) == 1 && p[0] == "security-groups" && r.Method == http.MethodGet:
		out := []map[string]any{}
		for _, g := range s.groups {
			if name := q.Get("name"); name != "" && name != g.Name {
				continue
			}
			out = append(out, g.json())
		}
		return ok(200, map[string]any{"security_groups": out})

	case len(p) == 1 && p[0] == "security-groups" && r.Method == http.MethodPost:
		var g struct {
			Name        string `json:"name"`
			Description string `json:"description"`
		}
		if err := json.Unmarshal(body["security_group"], &g); err != nil || g.Name == "" {
			return neutronError(400, "HTTPBadRequest", "Invalid input for security_group.")
		}
		sg := &secGroup{ID: newUUID(), Name: g.Name, Description: g.Description, Created: stamp()}
		// Neutron gives a new group rules that let everything out.
		for _, ether := range []string{"IPv4", "IPv6"} {
			sg.Rules = append(sg.Rules, ruleJSON(map[string]any{"security_group_id": sg.ID, "direction": "egress", "ethertype": ether, "description": nil}))
		}
		s.groups[sg.ID] = sg
		return ok(201, map[string]any{"security_group": sg.json()})

	case len(p) == 2 && p[0] == "security-groups" && r.Method == http.MethodDelete:
		sg := s.groups[p[1]]
		if sg == nil {
			return neutronError(404, "SecurityGroupNotFound", "Security group %s does not exist", p[1])
		}
		for _, srv := range s.servers {
			for _, g := range srv.Groups {
				if (g == sg.Name || g == sg.ID) && srv.Status != "DELETED" {
					return neutronError(409, "SecurityGroupInUse", "Security Group %s in use.", p[1])
				}
			}
		}
		delete(s.groups, p[1])
		return ok(204, nil)

	case len(p) == 1 && p[0] == "security-group-rules" && r.Method == http.MethodGet:
		out := []map[string]any{}
		for _, sg := range s.groups {
			if id := q.Get("security_group_id"); id != "" && id != sg.ID {
				continue
			}
			out = append(out, sg.Rules...)
		}
		return ok(200, map[string]any{"security_group_rules": out})

	case len(p) == 1 && p[0] == "security-group-rules" && r.Method == http.MethodPost:
		var rule map[string]any
		if err := json.Unmarshal(body["security_group_rule"], &rule); err != nil {
			return neutronError(400, "HTTPBadRequest", "Invalid input for security_group_rule.")
		}
		id, _ := rule["security_group_id"].(string)
		sg := s.groups[id]
		if sg == nil {
			return neutronError(404, "SecurityGroupNotFound", "Security group %s does not exist", id)
		}
		for _, have := range sg.Rules {
			if have["port_range_min"] == rule["port_range_min"] && have["protocol"] == rule["protocol"] && have["direction"] == rule["direction"] && have["remote_group_id"] == rule["remote_group_id"] {
				return neutronError(409, "SecurityGroupRuleExists", "Security group rule already exists.")
			}
		}
		rule = ruleJSON(rule)
		sg.Rules = append(sg.Rules, rule)
		for _, srv := range s.servers {
			if slices.Contains(srv.Groups, sg.Name) || slices.Contains(srv.Groups, sg.ID) {
				s.filter(srv)
			}
		}
		created := maps.Clone(rule)
		delete(created, "tags") // as Neutron answers a create: not the rule's list view
		delete(created, "standard_attr_id")
		return ok(201, map[string]any{"security_group_rule": created})

	case len(p) == 1 && p[0] == "floatingips" && r.Method == http.MethodGet:
		out := []map[string]any{}
		for _, f := range s.fips {
			if port := q.Get("port_id"); port != "" && port != f.PortID {
				continue
			}
			out = append(out, s.fipJSON(f))
		}
		return ok(200, map[string]any{"floatingips": out})

	case len(p) == 1 && p[0] == "floatingips" && r.Method == http.MethodPost:
		var req struct {
			Network string `json:"floating_network_id"`
			PortID  string `json:"port_id"`
		}
		if err := json.Unmarshal(body["floatingip"], &req); err != nil {
			return neutronError(400, "HTTPBadRequest", "Invalid input for floatingip.")
		}
		external := false
		for _, n := range s.networks {
			external = external || (n.ID == req.Network && n.External)
		}
		if !external {
			return neutronError(404, "ExternalNetworkNotFound", "External network %s could not be found.", req.Network)
		}
		if req.PortID != "" && s.servers[strings.TrimPrefix(req.PortID, "port-")] == nil {
			return neutronError(404, "PortNotFound", "Port %s could not be found.", req.PortID)
		}
		// On containers the address is one of the sites' internet,
		// mapped to the server. On local nodes nothing translates a
		// floating address to a fixed one: a floating IP given a
		// server's port takes that server's own loopback address.
		f := &floatingIP{ID: newUUID(), Network: req.Network, PortID: req.PortID, Created: stamp()}
		serverID, nodeAddr := "", ""
		if srv := s.servers[strings.TrimPrefix(req.PortID, "port-")]; srv != nil {
			serverID, nodeAddr = srv.ID, srv.Addr
		}
		addr, err := s.PublicAddress(f.ID, serverID, nodeAddr)
		if err != nil {
			return neutronError(500, "HTTPInternalServerError", "Floating IP: %v", err)
		}
		f.Address = addr
		s.fips[f.ID] = f
		return ok(201, map[string]any{"floatingip": s.fipJSON(f)})

	case len(p) == 2 && p[0] == "floatingips" && r.Method == http.MethodPut:
		// Associate with a port, or disassociate (port_id null).
		f := s.fips[p[1]]
		if f == nil {
			return neutronError(404, "FloatingIPNotFound", "Floating IP %s could not be found.", p[1])
		}
		var req struct {
			PortID *string `json:"port_id"`
		}
		if err := json.Unmarshal(body["floatingip"], &req); err != nil {
			return neutronError(400, "HTTPBadRequest", "Invalid input for floatingip.")
		}
		if req.PortID == nil || *req.PortID == "" {
			if _, err := s.PublicAddress(f.ID, "", ""); err != nil {
				return neutronError(500, "HTTPInternalServerError", "Floating IP: %v", err)
			}
			f.PortID = ""
			return ok(200, map[string]any{"floatingip": s.fipJSON(f)})
		}
		srv := s.servers[strings.TrimPrefix(*req.PortID, "port-")]
		if srv == nil {
			return neutronError(404, "PortNotFound", "Port %s could not be found.", *req.PortID)
		}
		// Its address stays: it is the user's handle on it.
		if _, err := s.PublicAddress(f.ID, srv.ID, srv.Addr); err != nil {
			return neutronError(500, "HTTPInternalServerError", "Floating IP: %v", err)
		}
		f.PortID = *req.PortID
		return ok(200, map[string]any{"floatingip": s.fipJSON(f)})

	case len(p) == 2 && p[0] == "floatingips" && r.Method == http.MethodDelete:
		if s.fips[p[1]] == nil {
			return neutronError(404, "FloatingIPNotFound", "Floating IP %s could not be found.", p[1])
		}
		if err := s.ReleasePublic(p[1]); err != nil {
			return neutronError(500, "HTTPInternalServerError", "Floating IP: %v", err)
		}
		delete(s.fips, p[1])
		return ok(204, nil)
	}
	return neutronError(404, "HTTPNotFound", "The resource could not be found.")
}

// The fields Neutron (Debian's 21, checked by the conformance test)
// gives each resource.

func stamp() string { return time.Now().UTC().Format("2006-01-02T15:04:05Z") }

func (n network) json() map[string]any {
	out := map[string]any{"id": n.ID, "name": n.Name, "router:external": n.External, "status": "ACTIVE", "admin_state_up": true,
		"subnets": []string{n.SubnetID}, "shared": false, "mtu": 1500, "description": "", "port_security_enabled": true,
		"availability_zone_hints": []any{}, "availability_zones": []any{}, "ipv4_address_scope": nil, "ipv6_address_scope": nil,
		"provider:network_type": "local", "provider:physical_network": nil, "provider:segmentation_id": nil,
		"project_id": projectID, "tenant_id": projectID, "tags": []any{}, "revision_number": 2,
		"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
	if n.External {
		out["is_default"] = false
	}
	return out
}

// subnetJSON is the network's one subnet. Its range describes; where
// servers' addresses come from is the backing's choice.
func (n network) subnetJSON() map[string]any {
	cidr, gw, first, last := "198.18.254.0/24", "198.18.254.1", "198.18.254.2", "198.18.254.254"
	if n.External {
		cidr, gw, first, last = "198.19.254.0/24", "198.19.254.1", "198.19.254.2", "198.19.254.254"
	}
	return map[string]any{"id": n.SubnetID, "name": n.Name + "-v4", "network_id": n.ID, "cidr": cidr, "ip_version": 4,
		"gateway_ip": gw, "allocation_pools": []map[string]any{{"start": first, "end": last}}, "enable_dhcp": true,
		"dns_nameservers": []any{}, "host_routes": []any{}, "service_types": []any{}, "subnetpool_id": nil,
		"ipv6_address_mode": nil, "ipv6_ra_mode": nil, "description": "", "tags": []any{}, "revision_number": 0,
		"project_id": projectID, "tenant_id": projectID, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
}

// portJSON is a server's one port.
func (s *Server) portJSON(srv *server) map[string]any {
	var groups []string
	for _, g := range srv.Groups {
		for _, sg := range s.groups {
			if sg.Name == g || sg.ID == g {
				groups = append(groups, sg.ID)
			}
		}
	}
	return map[string]any{"id": "port-" + srv.ID, "device_id": srv.ID, "device_owner": "compute:" + srv.Zone,
		"network_id": s.networks[0].ID, "fixed_ips": []map[string]any{{"ip_address": srv.Addr, "subnet_id": s.networks[0].SubnetID}},
		"status": "ACTIVE", "admin_state_up": true, "mac_address": macOf(srv.ID), "name": "", "description": "",
		"allowed_address_pairs": []any{}, "extra_dhcp_opts": []any{}, "port_security_enabled": true, "security_groups": groups,
		"binding:host_id": "emulated-host", "binding:profile": map[string]any{}, "binding:vif_type": "ovs", "binding:vnic_type": "normal",
		"binding:vif_details": map[string]any{"port_filter": true, "bound_drivers": map[string]any{"0": "openvswitch"}},
		"project_id":          projectID, "tenant_id": projectID, "tags": []any{}, "revision_number": 3,
		"created_at": srv.Created.UTC().Format("2006-01-02T15:04:05Z"), "updated_at": srv.Created.UTC().Format("2006-01-02T15:04:05Z")}
}

func (g *secGroup) json() map[string]any {
	rules := g.Rules
	if rules == nil {
		rules = []map[string]any{}
	}
	return map[string]any{"id": g.ID, "name": g.Name, "description": g.Description, "security_group_rules": rules,
		"project_id": projectID, "tenant_id": projectID, "shared": false, "stateful": true, "tags": []any{},
		"revision_number": 1, "created_at": g.Created, "updated_at": g.Created}
}

// ruleJSON completes a rule as Neutron keeps it.
func ruleJSON(rule map[string]any) map[string]any {
	out := map[string]any{"id": newUUID(), "description": "", "protocol": nil, "port_range_min": nil, "port_range_max": nil,
		"remote_ip_prefix": nil, "remote_group_id": nil, "remote_address_group_id": nil, "normalized_cidr": nil,
		"project_id": projectID, "tenant_id": projectID, "revision_number": 0, "tags": []any{}, "standard_attr_id": 1,
		"created_at": stamp(), "updated_at": stamp()}
	maps.Copy(out, rule)
	if prefix, ok := out["remote_ip_prefix"].(string); ok {
		if _, n, err := net.ParseCIDR(prefix); err == nil {
			out["normalized_cidr"] = n.String()
		}
	}
	return out
}

func (s *Server) fipJSON(f *floatingIP) map[string]any {
	out := map[string]any{"id": f.ID, "floating_network_id": f.Network, "floating_ip_address": f.Address, "status": "ACTIVE",
		"port_id": nil, "fixed_ip_address": nil, "port_details": nil, "router_id": nil, "description": "",
		"project_id": projectID, "tenant_id": projectID, "tags": []any{}, "revision_number": 1,
		"created_at": f.Created, "updated_at": f.Created}
	if srv := s.servers[strings.TrimPrefix(f.PortID, "port-")]; f.PortID != "" && srv != nil {
		out["port_id"], out["fixed_ip_address"], out["router_id"] = f.PortID, srv.Addr, "emulated-router"
		out["port_details"] = map[string]any{"admin_state_up": true, "device_id": srv.ID, "device_owner": "compute:" + srv.Zone,
			"mac_address": macOf(srv.ID), "name": "", "network_id": s.networks[0].ID, "status": "ACTIVE"}
	}
	return out
}

// FloatingIPs counts the floating IPs in use (tests).
func (s *Server) FloatingIPs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.fips)
}
