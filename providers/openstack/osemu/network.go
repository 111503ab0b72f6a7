package osemu

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
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
			if ext := q.Get("router:external"); ext != "" && (ext == "true") != n.External {
				continue
			}
			out = append(out, map[string]any{"id": n.ID, "name": n.Name, "router:external": n.External, "status": "ACTIVE", "admin_state_up": true})
		}
		return ok(200, map[string]any{"networks": out})

	case len(p) == 1 && p[0] == "ports" && r.Method == http.MethodGet:
		out := []map[string]any{}
		for _, id := range s.order {
			srv := s.servers[id]
			if srv == nil || srv.Status == "DELETED" {
				continue
			}
			if dev := q.Get("device_id"); dev != "" && dev != id {
				continue
			}
			out = append(out, map[string]any{"id": "port-" + id, "device_id": id, "network_id": s.networks[0].ID,
				"fixed_ips": []map[string]any{{"ip_address": srv.Addr}}, "status": "ACTIVE"})
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
		sg := &secGroup{ID: newUUID(), Name: g.Name, Description: g.Description}
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

	case len(p) == 1 && p[0] == "subnets" && r.Method == http.MethodGet:
		// The emulated networks have no subnets of their own.
		return ok(200, map[string]any{"subnets": []any{}})

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
		rule["id"] = newUUID()
		sg.Rules = append(sg.Rules, rule)
		for _, srv := range s.servers {
			if slices.Contains(srv.Groups, sg.Name) || slices.Contains(srv.Groups, sg.ID) {
				s.filter(srv)
			}
		}
		return ok(201, map[string]any{"security_group_rule": rule})

	case len(p) == 1 && p[0] == "floatingips" && r.Method == http.MethodGet:
		out := []map[string]any{}
		for _, f := range s.fips {
			if port := q.Get("port_id"); port != "" && port != f.PortID {
				continue
			}
			out = append(out, f.json())
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
		f := &floatingIP{ID: newUUID(), Network: req.Network, PortID: req.PortID}
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
		return ok(201, map[string]any{"floatingip": f.json()})

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
			return ok(200, map[string]any{"floatingip": f.json()})
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
		return ok(200, map[string]any{"floatingip": f.json()})

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

func (g *secGroup) json() map[string]any {
	rules := g.Rules
	if rules == nil {
		rules = []map[string]any{}
	}
	return map[string]any{"id": g.ID, "name": g.Name, "description": g.Description, "security_group_rules": rules, "tenant_id": "kumo-project"}
}

func (f *floatingIP) json() map[string]any {
	return map[string]any{"id": f.ID, "floating_network_id": f.Network, "port_id": f.PortID, "floating_ip_address": f.Address, "status": "ACTIVE"}
}

// FloatingIPs counts the floating IPs in use (tests).
func (s *Server) FloatingIPs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.fips)
}
