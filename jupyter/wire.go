// Package jupyter speaks the Jupyter messaging protocol (version 5.3) as
// a kernel: the connection file, the five ZeroMQ sockets, signed
// messages, and the requests a notebook, console or nbclient sends. What
// the kernel does with code is a Handler's: kumo's runs each cell as a
// recipe cell (cmd/kumo/kernel.go).
//
// The sockets are github.com/go-zeromq/zmq4, a pure-Go ZeroMQ: kumo stays
// one static-enough binary with no libzmq to install on every machine,
// which the kernel alone would need.
package jupyter

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// ProtocolVersion is the version of the messaging protocol spoken.
const ProtocolVersion = "5.3"

// Connection is a kernel's connection file, as Jupyter writes it.
type Connection struct {
	Transport       string `json:"transport"`
	IP              string `json:"ip"`
	ShellPort       int    `json:"shell_port"`
	IOPubPort       int    `json:"iopub_port"`
	StdinPort       int    `json:"stdin_port"`
	ControlPort     int    `json:"control_port"`
	HBPort          int    `json:"hb_port"`
	Key             string `json:"key"`
	SignatureScheme string `json:"signature_scheme"`
	KernelName      string `json:"kernel_name"`
}

// ReadConnection reads and checks a connection file.
func ReadConnection(path string) (*Connection, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Connection
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("connection file %s: %v", path, err)
	}
	if c.Transport == "" {
		c.Transport = "tcp"
	}
	if c.Transport != "tcp" && c.Transport != "ipc" {
		return nil, fmt.Errorf("connection file %s: transport %q: kumo's kernel speaks tcp and ipc", path, c.Transport)
	}
	if c.SignatureScheme != "" && c.SignatureScheme != "hmac-sha256" {
		return nil, fmt.Errorf("connection file %s: signature scheme %q: kumo's kernel signs with hmac-sha256", path, c.SignatureScheme)
	}
	return &c, nil
}

// endpoint is the ZeroMQ address of a port of the connection.
func (c *Connection) endpoint(port int) string {
	if c.Transport == "ipc" {
		return fmt.Sprintf("ipc://%s-%d", c.IP, port)
	}
	return fmt.Sprintf("tcp://%s:%d", c.IP, port)
}

// Header is a message's header.
type Header struct {
	MsgID    string `json:"msg_id"`
	Session  string `json:"session"`
	Username string `json:"username"`
	Date     string `json:"date"`
	MsgType  string `json:"msg_type"`
	Version  string `json:"version"`
}

// Message is one protocol message.
type Message struct {
	Identities   [][]byte
	Header       Header
	ParentHeader json.RawMessage // {} when there is none
	Metadata     map[string]any
	Content      json.RawMessage
	Buffers      [][]byte
}

// Type is the message's msg_type.
func (m *Message) Type() string { return m.Header.MsgType }

const delimiter = "<IDS|MSG>"

// ErrBadSignature is a message whose signature does not match: forged,
// or from a client with another key. It is dropped.
var ErrBadSignature = errors.New("bad signature")

// signer signs and checks messages with the connection's key.
type signer struct{ key []byte }

func (s signer) sign(parts ...[]byte) string {
	if len(s.key) == 0 {
		return ""
	}
	mac := hmac.New(sha256.New, s.key)
	for _, p := range parts {
		mac.Write(p)
	}
	return hex.EncodeToString(mac.Sum(nil))
}

// decode reads a message from its ZeroMQ frames, checking its signature.
func (s signer) decode(frames [][]byte) (*Message, error) {
	i := 0
	for i < len(frames) && string(frames[i]) != delimiter {
		i++
	}
	if i == len(frames) || len(frames) < i+6 {
		return nil, fmt.Errorf("not a Jupyter message: %d frames", len(frames))
	}
	sig, header, parent, meta, content := frames[i+1], frames[i+2], frames[i+3], frames[i+4], frames[i+5]
	if len(s.key) > 0 {
		want := s.sign(header, parent, meta, content)
		if !hmac.Equal([]byte(want), sig) {
			return nil, ErrBadSignature
		}
	}
	m := &Message{Identities: frames[:i], ParentHeader: parent, Content: content, Buffers: frames[i+6:]}
	if err := json.Unmarshal(header, &m.Header); err != nil {
		return nil, fmt.Errorf("message header: %v", err)
	}
	if err := json.Unmarshal(meta, &m.Metadata); err != nil {
		m.Metadata = map[string]any{}
	}
	return m, nil
}

// encode writes a message as ZeroMQ frames, signed.
func (s signer) encode(m *Message) ([][]byte, error) {
	header, err := json.Marshal(m.Header)
	if err != nil {
		return nil, err
	}
	parent := []byte(m.ParentHeader)
	if len(parent) == 0 {
		parent = []byte("{}")
	}
	meta := m.Metadata
	if meta == nil {
		meta = map[string]any{}
	}
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	content := []byte(m.Content)
	if len(content) == 0 {
		content = []byte("{}")
	}
	frames := append([][]byte{}, m.Identities...)
	frames = append(frames, []byte(delimiter), []byte(s.sign(header, parent, metaJSON, content)), header, parent, metaJSON, content)
	return append(frames, m.Buffers...), nil
}

// newID is a fresh message or session id.
func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// now is the time in the protocol's ISO 8601 form.
func now() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000000Z") }
