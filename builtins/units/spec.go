package units

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.starlark.net/starlark"
	"gopkg.in/yaml.v3"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/fleet"
	"github.com/kumo-dev/kumo/providers"
)

//go:embed flavors.yaml
var builtinFlavors []byte

// Catalog maps provider -> flavor -> field -> value, like VCP's
// vcp_flavor.yml.
type Catalog map[string]map[string]map[string]any

// LoadCatalog reads the built-in flavors and lays the user's file over
// them: $KUMO_FLAVORS, else ~/.config/kumo/flavors.yaml if it exists.
// A user flavor replaces fields of a built-in one of the same name.
func LoadCatalog() (Catalog, error) {
	path := userCatalog()
	if path == "" {
		return parseCatalog(nil, "")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("KUMO_FLAVORS") != "" {
			return nil, fmt.Errorf("flavors file %s, named by $KUMO_FLAVORS: %w", path, errors.Unwrap(err))
		}
		return nil, fmt.Errorf("flavors file: %w", err)
	}
	return parseCatalog(b, path)
}

// parseCatalog lays the user's flavors file (its text user, read from
// path) over the built-in flavors.
func parseCatalog(user []byte, path string) (Catalog, error) {
	var cat Catalog
	if err := yaml.Unmarshal(builtinFlavors, &cat); err != nil {
		return nil, err
	}
	var mine Catalog
	if err := yaml.Unmarshal(user, &mine); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			line, _, _ := strings.Cut(te.Errors[0], ":")
			return nil, fmt.Errorf("flavors file %s: %s: want providers, their flavors and fields, as in\n  local:\n    tiny: {cpus: 1, memory_gb: 1}", path, line)
		}
		return nil, fmt.Errorf("flavors file %s: %w", path, err)
	}
	for prov, flavors := range mine {
		if cat[prov] == nil {
			cat[prov] = map[string]map[string]any{}
		}
		for name, fields := range flavors {
			if cat[prov][name] == nil {
				cat[prov][name] = map[string]any{}
			}
			for k, v := range fields {
				cat[prov][name][k] = v
			}
		}
	}
	return cat, nil
}

// userCatalog is the user's flavors file, or "".
func userCatalog() string {
	if path := os.Getenv("KUMO_FLAVORS"); path != "" {
		return path
	}
	if home, err := os.UserHomeDir(); err == nil {
		path := filepath.Join(home, ".config", "kumo", "flavors.yaml")
		if _, err := os.Stat(path); err == nil {
			return path
		}
	}
	return ""
}

// catalogDigest identifies the catalog spec() reads: a cell that calls
// spec() runs again when the user's flavors file changes.
func catalogDigest() string {
	h := sha256.New()
	h.Write(builtinFlavors)
	if path := userCatalog(); path != "" {
		b, err := os.ReadFile(path)
		fmt.Fprintf(h, "\x00%s\x00%v\x00", path, err)
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func init() { builtins.RegisterInput("spec", catalogDigest) }

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// Spec is what spec() returns: a provider, a flavor and its fields,
// which a recipe may change (spec.disk_gb = 32) before create_unit.
type Spec struct {
	Provider string
	Flavor   string
	Fields   map[string]starlark.Value
	allowed  []string
	newSpec  func() any // the provider's typed spec, which checks values
	frozen   bool
}

var specBuiltin = &builtins.Def{
	Name: "spec",
	Doc: `spec(provider, flavor, **overrides)
Returns the node specification for a flavor (small, medium, large, ...) of
a provider, from kumo's catalog and ~/.config/kumo/flavors.yaml (or
$KUMO_FLAVORS). Keyword arguments override the flavor's fields; fields can
also be set afterwards (s.disk_gb = 32). An unknown provider, flavor or
field is an error that lists the valid ones. ` + "`kumo doc spec`" + ` lists them too.`,
	Fn: specFn,
}

func specFn(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var provider, flavor string
	if err := builtins.Unpack(b, args, nil, "provider", &provider, "flavor", &flavor); err != nil {
		return nil, err
	}
	env, err := builtins.FromThread(thread)
	if err != nil {
		return nil, err
	}
	p, err := env.Provider(provider)
	if err != nil {
		return nil, builtins.Inputf(b, "%v", err)
	}
	cat, err := LoadCatalog()
	if err != nil {
		return nil, builtins.Inputf(b, "%v", err)
	}
	s, err := makeSpec(cat, provider, flavor, p.NewSpec)
	if err != nil {
		return nil, builtins.Inputf(b, "%v", err)
	}
	for _, kv := range kwargs {
		if err := s.SetField(string(kv[0].(starlark.String)), kv[1]); err != nil {
			return nil, builtins.Inputf(b, "%v", err)
		}
	}
	return s, nil
}

// makeSpec is flavor of provider from the catalog, its fields checked
// against the provider's typed spec (newSpec).
func makeSpec(cat Catalog, provider, flavor string, newSpec func() any) (*Spec, error) {
	fields, ok := cat[provider][flavor]
	if !ok {
		return nil, fmt.Errorf("unknown flavor %q for provider %s (have: %s)", flavor, provider, strings.Join(sortedKeys(cat[provider]), ", "))
	}
	s := &Spec{Provider: provider, Flavor: flavor, Fields: map[string]starlark.Value{}, allowed: providers.SpecFieldNames(newSpec()), newSpec: newSpec}
	for _, k := range sortedKeys(fields) {
		sv, err := toStarlark(fields[k])
		if err != nil {
			return nil, fmt.Errorf("flavor %s/%s field %s: %v", provider, flavor, k, err)
		}
		if err := s.SetField(k, sv); err != nil {
			return nil, fmt.Errorf("flavor %s/%s in the catalog: %v", provider, flavor, err)
		}
	}
	return s, nil
}

func toStarlark(v any) (starlark.Value, error) {
	switch v := v.(type) {
	case nil:
		return starlark.None, nil
	case string:
		return starlark.String(v), nil
	case bool:
		return starlark.Bool(v), nil
	case int:
		return starlark.MakeInt(v), nil
	case float64:
		return starlark.Float(v), nil
	case map[string]any:
		d := starlark.NewDict(len(v))
		for _, k := range sortedKeys(v) {
			sx, err := toStarlark(v[k])
			if err != nil {
				return nil, err
			}
			d.SetKey(starlark.String(k), sx)
		}
		return d, nil
	case []any:
		var items []starlark.Value
		for _, x := range v {
			sx, err := toStarlark(x)
			if err != nil {
				return nil, err
			}
			items = append(items, sx)
		}
		return starlark.NewList(items), nil
	}
	return nil, fmt.Errorf("unsupported value %v", v)
}

func (s *Spec) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "spec(%q, %q", s.Provider, s.Flavor)
	for _, k := range sortedKeys(s.Fields) {
		fmt.Fprintf(&b, ", %s=%s", k, s.Fields[k])
	}
	b.WriteString(")")
	return b.String()
}
func (s *Spec) Type() string          { return "spec" }
func (s *Spec) Freeze()               { s.frozen = true }
func (s *Spec) Truth() starlark.Bool  { return starlark.True }
func (s *Spec) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: spec") }
func (s *Spec) AttrNames() []string {
	return append([]string{"flavor", "provider"}, s.allowed...)
}
func (s *Spec) Attr(name string) (starlark.Value, error) {
	switch name {
	case "provider":
		return starlark.String(s.Provider), nil
	case "flavor":
		return starlark.String(s.Flavor), nil
	}
	if v, ok := s.Fields[name]; ok {
		return v, nil
	}
	if s.allows(name) {
		return starlark.None, nil
	}
	return nil, nil
}

func (s *Spec) allows(name string) bool {
	for _, f := range s.allowed {
		if f == name {
			return true
		}
	}
	return false
}

// SetField checks the field against the provider's list. A wrong name
// or type is the recipe's mistake (exit 2), also when it sets the field
// after spec() (s.disk_gb = 32).
func (s *Spec) SetField(name string, v starlark.Value) error {
	if err := s.setField(name, v); err != nil {
		return &starkit.InputError{Err: err}
	}
	return nil
}

func (s *Spec) setField(name string, v starlark.Value) error {
	if s.frozen {
		return fmt.Errorf("cannot set %s of a frozen spec", name)
	}
	if !s.allows(name) {
		return fmt.Errorf("unknown field %q for provider %s (valid: %s)", name, s.Provider, strings.Join(s.allowed, ", "))
	}
	// The value's type is checked now, where the recipe sets it, not when
	// a unit is made from the spec.
	x, err := fromStarlark(v)
	if err != nil {
		return fmt.Errorf("spec field %s: %w", name, err)
	}
	if err := providers.DecodeSpec(s.Provider, map[string]any{name: x}, s.newSpec()); err != nil {
		return err
	}
	s.Fields[name] = v
	return nil
}

// Fleet is the spec as the resource engine stores it with its unit.
func (s *Spec) Fleet() (fleet.Spec, error) {
	fields := map[string]any{}
	for k, v := range s.Fields {
		x, err := fromStarlark(v)
		if err != nil {
			return fleet.Spec{}, fmt.Errorf("spec field %s: %w", k, err)
		}
		fields[k] = x
	}
	return fleet.Spec{Provider: s.Provider, Flavor: s.Flavor, Fields: fields}, nil
}

func fromStarlark(v starlark.Value) (any, error) {
	switch v := v.(type) {
	case starlark.NoneType:
		return nil, nil
	case starlark.String:
		return string(v), nil
	case starlark.Bool:
		return bool(v), nil
	case starlark.Int:
		n, ok := v.Int64()
		if !ok {
			return nil, fmt.Errorf("integer too large")
		}
		return n, nil
	case starlark.Float:
		return float64(v), nil
	case *starlark.Dict:
		out := map[string]any{}
		for _, kv := range v.Items() {
			k, ok := starlark.AsString(kv[0])
			if !ok {
				return nil, fmt.Errorf("dict keys must be strings, got %s", kv[0].Type())
			}
			x, err := fromStarlark(kv[1])
			if err != nil {
				return nil, err
			}
			out[k] = x
		}
		return out, nil
	case *starlark.List:
		var out []any
		for i := 0; i < v.Len(); i++ {
			x, err := fromStarlark(v.Index(i))
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		return out, nil
	}
	return nil, fmt.Errorf("want string, number, bool, list or dict, got %s", v.Type())
}
