package osemu

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// do sends one request to s, with the token when it is not "".
func do(s *Server, method, path, body, token string) *httptest.ResponseRecorder {
	r, err := http.NewRequest(method, "http://emulator"+path, strings.NewReader(body))
	if err != nil {
		return nil // not a request a client can send
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		r.Header.Set("X-Auth-Token", token)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

var methods = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"}

// FuzzRequest sends the emulator any method, path and body, with a valid
// token, after a key pair, a security group and a server exist: it
// answers a 2xx or 4xx with JSON (or no body), never a 5xx, a panic or a
// hang, and it still lists its servers afterwards.
func FuzzRequest(f *testing.F) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := ssh.NewPublicKey(pub)
	key, _ := json.Marshal(strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))))
	for _, s := range []struct {
		m          byte
		path, body string
	}{
		{0, "/compute/v2.1/flavors/detail", ""},
		{0, "/compute/v2.1/servers/detail?metadata=%7B%22kumo%3Arun%22%3A%22r%22%7D", ""},
		{0, "/compute/v2.1/servers/SERVER", ""},
		{1, "/compute/v2.1/servers", `{"server":{"name":"w-1","imageRef":"5f8a1b2c-0000-4000-8000-000000000012","flavorRef":"flavor-m1.small","key_name":"k","metadata":{"kumo:run":"r"},"security_groups":[{"name":"g"}]}}`},
		{1, "/compute/v2.1/servers/SERVER/action", `{"os-stop":null}`},
		{1, "/compute/v2.1/servers/SERVER/action", `{"os-start":null}`},
		{3, "/compute/v2.1/servers/SERVER", ""},
		{1, "/compute/v2.1/os-keypairs", `{"keypair":{"name":"k2","public_key":` + string(key) + `}}`},
		{0, "/compute/v2.1/os-keypairs", ""},
		{3, "/compute/v2.1/os-keypairs/k", ""},
		{0, "/network/v2.0/networks?router:external=true", ""},
		{0, "/network/v2.0/ports?device_id=SERVER", ""},
		{1, "/network/v2.0/security-groups", `{"security_group":{"name":"g2","description":"d"}}`},
		{1, "/network/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"GROUP","direction":"ingress","protocol":"tcp","port_range_min":22,"port_range_max":22,"remote_ip_prefix":"0.0.0.0/0"}}`},
		{3, "/network/v2.0/security-groups/GROUP", ""},
		{1, "/network/v2.0/floatingips", `{"floatingip":{"floating_network_id":"x","port_id":"port-SERVER"}}`},
		{0, "/network/v2.0/floatingips", ""},
		{0, "/image/v2/images?name=debian-12", ""},
		{0, "/identity/v3", ""},
		{0, "/compute", ""},
		{1, "/identity/v3/auth/tokens", `{"auth":{}}`},
		{1, "/compute/v2.1/servers", `{"server":`},
		{2, "/compute/v2.1/servers/SERVER", `[]`},
	} {
		f.Add(s.m, s.path, s.body)
	}
	f.Fuzz(func(t *testing.T, m byte, path, body string) {
		if !strings.HasPrefix(path, "/") {
			return
		}
		s := New(Options{APIOnly: true})
		w := do(s, "POST", "/identity/v3/auth/tokens", `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"`+User+`","password":"`+Password+`","domain":{"name":"Default"}}}},"scope":{"project":{"name":"`+Project+`","domain":{"name":"Default"}}}}}`, "")
		token := w.Header().Get("X-Subject-Token")
		if w.Code != 201 || token == "" {
			t.Fatalf("auth: %d %s", w.Code, w.Body)
		}
		setup := func(method, path, body string) map[string]any {
			w := do(s, method, path, body, token)
			if w.Code >= 300 {
				t.Fatalf("setup %s %s: %d %s", method, path, w.Code, w.Body)
			}
			var out map[string]any
			json.Unmarshal(w.Body.Bytes(), &out)
			return out
		}
		setup("POST", "/compute/v2.1/os-keypairs", `{"keypair":{"name":"k","public_key":`+string(key)+`}}`)
		group := setup("POST", "/network/v2.0/security-groups", `{"security_group":{"name":"g","description":"d"}}`)["security_group"].(map[string]any)["id"].(string)
		server := setup("POST", "/compute/v2.1/servers", `{"server":{"name":"w","imageRef":"5f8a1b2c-0000-4000-8000-000000000012","flavorRef":"flavor-m1.small","key_name":"k"}}`)["server"].(map[string]any)["id"].(string)
		path = strings.ReplaceAll(strings.ReplaceAll(path, "SERVER", server), "GROUP", group)
		body = strings.ReplaceAll(strings.ReplaceAll(body, "SERVER", server), "GROUP", group)
		method := methods[int(m)%len(methods)]

		if w = do(s, method, path, body, token); w == nil {
			return
		}
		check(t, method, path, w)
		w = do(s, "GET", "/compute/v2.1/servers/detail", "", token)
		if w.Code != 200 {
			t.Fatalf("after %s %s the server list answers %d: %s", method, path, w.Code, w.Body)
		}
	})
}

func check(t *testing.T, method, path string, w *httptest.ResponseRecorder) {
	t.Helper()
	req := method + " " + path
	// Keystone's root answers GET with 300 Multiple Choices: its versions.
	root := path
	if i := strings.IndexAny(root, "?#"); i >= 0 {
		root = root[:i]
	}
	root = strings.Trim(root, "/")
	versions := w.Code == 300 && (method == "GET" || method == "HEAD") && (root == "identity" || root == "")
	if w.Code >= 500 || w.Code < 200 || w.Code >= 300 && w.Code < 400 && !versions {
		t.Fatalf("%s: status %d: %s", req, w.Code, w.Body)
	}
	if w.Body.Len() > 0 && !json.Valid(w.Body.Bytes()) {
		t.Fatalf("%s: the answer is not JSON: %s", req, w.Body)
	}
}
