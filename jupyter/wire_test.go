package jupyter

import (
	"encoding/json"
	"errors"
	"testing"
)

// A message signed with the connection's key reads back as it was sent;
// one with another key, or tampered with after signing, is refused.
func TestSignedMessagesAndForgeries(t *testing.T) {
	s := signer{key: []byte("the-key")}
	m := &Message{Identities: [][]byte{[]byte("client")}, Header: Header{MsgID: "1", MsgType: "execute_request", Version: ProtocolVersion},
		Content: json.RawMessage(`{"code":"x = 1"}`)}
	frames, err := s.encode(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.decode(frames)
	if err != nil {
		t.Fatal(err)
	}
	if got.Type() != "execute_request" || string(got.Content) != `{"code":"x = 1"}` || string(got.Identities[0]) != "client" {
		t.Errorf("decoded %+v", got)
	}
	forged, _ := signer{key: []byte("another-key")}.encode(m)
	if _, err := s.decode(forged); !errors.Is(err, ErrBadSignature) {
		t.Errorf("a message signed with another key: %v", err)
	}
	tampered := append([][]byte{}, frames...)
	tampered[len(tampered)-1] = []byte(`{"code":"destroy()"}`)
	if _, err := s.decode(tampered); !errors.Is(err, ErrBadSignature) {
		t.Errorf("a message changed after signing: %v", err)
	}
	if _, err := s.decode([][]byte{[]byte("no delimiter")}); err == nil {
		t.Error("frames without a delimiter read as a message")
	}
}

// Cursor positions are code points in the protocol, bytes in Go.
func TestCursorOffsets(t *testing.T) {
	code := "雲 = 1; ssh_r"
	if b := byteOffset(code, 12); b != len(code) {
		t.Errorf("byteOffset = %d, want %d", b, len(code))
	}
	if b := byteOffset(code, 1); b != len("雲") {
		t.Errorf("byteOffset after one code point = %d, want %d", b, len("雲"))
	}
	if r := runeOffset(code, len(code)); r != 12 {
		t.Errorf("runeOffset = %d, want 12", r)
	}
}

// History: the last n executions, a range of counts, a glob search.
func TestHistory(t *testing.T) {
	k := &Kernel{history: []historyEntry{{1, "x = 1", nil}, {2, "6*7", "42"}, {3, "6*7", "42"}, {4, "y", nil}}}
	ask := func(req string) []any {
		t.Helper()
		return k.historyFor([]byte(req))
	}
	if h := ask(`{"hist_access_type": "tail", "n": 2}`); len(h) != 2 || h[0].([]any)[1] != 3 {
		t.Errorf("tail 2 = %v", h)
	}
	if h := ask(`{"hist_access_type": "range", "session": 1, "start": 2, "stop": 3}`); len(h) != 1 || h[0].([]any)[2] != "6*7" {
		t.Errorf("range 2..3 = %v", h)
	}
	if h := ask(`{"hist_access_type": "search", "pattern": "6*", "unique": true}`); len(h) != 1 {
		t.Errorf("unique search = %v", h)
	}
	if h := ask(`{"hist_access_type": "tail", "n": 1, "output": true}`); h[0].([]any)[2].([]any)[0] != "y" {
		t.Errorf("tail with output = %v", h)
	}
}
