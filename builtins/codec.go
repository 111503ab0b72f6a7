package builtins

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// The journal codec turns the results of journaled builtins into JSON and
// back. Replay hands the decoded value to the recipe in place of a live
// call, so decoding must rebuild the same value: kumo's own types (nodes,
// units, command results) register how they are rebuilt.

// An Encodable value is one of kumo's types that can be stored in the journal.
type Encodable interface {
	starlark.Value
	JournalKind() string  // the tag it is stored under
	JournalData() any     // its fields, for encoding/json
	DigestString() string // its identity, for argument digests
}

// A Decoder rebuilds an Encodable value from its JournalData.
type Decoder func(data json.RawMessage) (starlark.Value, error)

var decoders = map[string]Decoder{}

// RegisterDecoder registers how values of kind are rebuilt. Called from
// init of the package that defines the type.
func RegisterDecoder(kind string, d Decoder) { decoders[kind] = d }

type encoded struct {
	T string          `json:"t"`
	V json.RawMessage `json:"v,omitempty"`
}

// Encode renders v for the journal.
func Encode(v starlark.Value) (string, error) {
	e, err := encode(v)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(e)
	return string(b), err
}

func raw(x any) json.RawMessage {
	b, _ := json.Marshal(x)
	return b
}

func encode(v starlark.Value) (encoded, error) {
	switch v := v.(type) {
	case starlark.NoneType:
		return encoded{T: "none"}, nil
	case starlark.Bool:
		return encoded{T: "bool", V: raw(bool(v))}, nil
	case starlark.Int:
		return encoded{T: "int", V: raw(v.String())}, nil
	case starlark.Float:
		return encoded{T: "float", V: raw(float64(v))}, nil
	case starlark.String:
		return encoded{T: "str", V: raw(string(v))}, nil
	case starlark.Bytes:
		return encoded{T: "bytes", V: raw(base64.StdEncoding.EncodeToString([]byte(v)))}, nil
	case *starlark.List:
		items, err := encodeAll(v)
		return encoded{T: "list", V: raw(items)}, err
	case starlark.Tuple:
		items, err := encodeAll(v)
		return encoded{T: "tuple", V: raw(items)}, err
	case *starlark.Dict:
		var pairs [][2]encoded
		for _, kv := range v.Items() {
			k, err := encode(kv[0])
			if err != nil {
				return encoded{}, err
			}
			val, err := encode(kv[1])
			if err != nil {
				return encoded{}, err
			}
			pairs = append(pairs, [2]encoded{k, val})
		}
		return encoded{T: "dict", V: raw(pairs)}, nil
	case *starlarkstruct.Struct:
		d := starlark.StringDict{}
		v.ToStringDict(d)
		var fields [][2]any
		for _, name := range d.Keys() {
			f, err := encode(d[name])
			if err != nil {
				return encoded{}, err
			}
			fields = append(fields, [2]any{name, f})
		}
		return encoded{T: "struct", V: raw(fields)}, nil
	case Encodable:
		return encoded{T: v.JournalKind(), V: raw(v.JournalData())}, nil
	}
	return encoded{}, fmt.Errorf("cannot journal a value of type %s", v.Type())
}

func encodeAll(it starlark.Iterable) ([]encoded, error) {
	var out []encoded
	iter := it.Iterate()
	defer iter.Done()
	var x starlark.Value
	for iter.Next(&x) {
		e, err := encode(x)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Decode rebuilds a value encoded by Encode.
func Decode(s string) (starlark.Value, error) {
	var e encoded
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		return nil, fmt.Errorf("journal entry: %w", err)
	}
	return decode(e)
}

func decode(e encoded) (starlark.Value, error) {
	switch e.T {
	case "none":
		return starlark.None, nil
	case "bool":
		var b bool
		err := json.Unmarshal(e.V, &b)
		return starlark.Bool(b), err
	case "int":
		var s string
		if err := json.Unmarshal(e.V, &s); err != nil {
			return nil, err
		}
		n, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return nil, fmt.Errorf("journal entry: bad int %q", s)
		}
		return starlark.MakeBigInt(n), nil
	case "float":
		var f float64
		err := json.Unmarshal(e.V, &f)
		return starlark.Float(f), err
	case "str":
		var s string
		err := json.Unmarshal(e.V, &s)
		return starlark.String(s), err
	case "bytes":
		var s string
		if err := json.Unmarshal(e.V, &s); err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		return starlark.Bytes(b), err
	case "list", "tuple":
		var items []encoded
		if err := json.Unmarshal(e.V, &items); err != nil {
			return nil, err
		}
		vals := make([]starlark.Value, len(items))
		for i, it := range items {
			v, err := decode(it)
			if err != nil {
				return nil, err
			}
			vals[i] = v
		}
		if e.T == "tuple" {
			return starlark.Tuple(vals), nil
		}
		return starlark.NewList(vals), nil
	case "dict":
		var pairs [][2]encoded
		if err := json.Unmarshal(e.V, &pairs); err != nil {
			return nil, err
		}
		d := starlark.NewDict(len(pairs))
		for _, p := range pairs {
			k, err := decode(p[0])
			if err != nil {
				return nil, err
			}
			v, err := decode(p[1])
			if err != nil {
				return nil, err
			}
			if err := d.SetKey(k, v); err != nil {
				return nil, err
			}
		}
		return d, nil
	case "struct":
		var rawFields [][2]json.RawMessage
		if err := json.Unmarshal(e.V, &rawFields); err != nil {
			return nil, err
		}
		d := starlark.StringDict{}
		for _, f := range rawFields {
			var name string
			var val encoded
			if err := json.Unmarshal(f[0], &name); err != nil {
				return nil, err
			}
			if err := json.Unmarshal(f[1], &val); err != nil {
				return nil, err
			}
			v, err := decode(val)
			if err != nil {
				return nil, err
			}
			d[name] = v
		}
		return starlarkstruct.FromStringDict(starlarkstruct.Default, d), nil
	}
	if d, ok := decoders[e.T]; ok {
		return d(e.V)
	}
	return nil, fmt.Errorf("journal entry: unknown kind %q", e.T)
}

// DescribeCall renders a call readably, for the journal and divergence
// messages. kumo's values show their identity, secrets their name only.
func DescribeCall(name string, recv starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) string {
	var b strings.Builder
	if recv != nil {
		b.WriteString(describe(recv))
		b.WriteByte('.')
	}
	b.WriteString(name)
	b.WriteByte('(')
	for i, a := range args {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(describe(a))
	}
	for i, kv := range kwargs {
		if i > 0 || len(args) > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(kv[0].(starlark.String)))
		b.WriteByte('=')
		b.WriteString(describe(kv[1]))
	}
	b.WriteByte(')')
	return b.String()
}

// Digest is the hash replay compares: two calls with the same digest are
// the same call.
func Digest(description string) string {
	sum := sha256.Sum256([]byte(description))
	return hex.EncodeToString(sum[:16])
}

func describe(v starlark.Value) string {
	switch v := v.(type) {
	case Encodable:
		return v.DigestString()
	case *starlark.List:
		return "[" + describeAll(v) + "]"
	case starlark.Tuple:
		return "(" + describeAll(v) + ")"
	case *starlark.Dict:
		var parts []string
		for _, kv := range v.Items() {
			parts = append(parts, describe(kv[0])+": "+describe(kv[1]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return v.String() // deterministic for Starlark's own types; secrets print their name
}

func describeAll(it starlark.Iterable) string {
	var parts []string
	iter := it.Iterate()
	defer iter.Done()
	var x starlark.Value
	for iter.Next(&x) {
		parts = append(parts, describe(x))
	}
	return strings.Join(parts, ", ")
}

// EncodeValue encodes a value nested inside an Encodable value's data.
func EncodeValue(v starlark.Value) (json.RawMessage, error) {
	e, err := encode(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(e)
}

// DecodeValue decodes what EncodeValue encoded.
func DecodeValue(data json.RawMessage) (starlark.Value, error) { return Decode(string(data)) }
