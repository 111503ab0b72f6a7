package providers

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Each provider reads its spec fields into a typed spec of its own: a
// struct whose json tags name the fields. Fields come from YAML (the
// catalog: int), Starlark (recipes: int64) and JSON (the state: float64);
// a JSON round trip reads them all alike and names a field of the wrong
// type.

// DecodeSpec reads spec fields into out, a pointer to a typed spec.
// Fields the type does not have are ignored: a state written by an older
// kumo may carry some.
func DecodeSpec(provider string, fields map[string]any, out any) error {
	b, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("%s spec: %v", provider, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%s field %s is %s, want %s", provider, te.Field, jsonKind(te.Value), goKind(te.Type))
		}
		return fmt.Errorf("%s spec: %v", provider, err)
	}
	return nil
}

// SpecFieldNames lists, sorted, the fields of a typed spec a recipe may
// set: its json names, less those tagged `kumo:"located"`, which kumo
// records itself (see Locator).
func SpecFieldNames(spec any) []string {
	t := reflect.TypeOf(spec)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || f.Tag.Get("kumo") == "located" {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// jsonKind words what encoding/json found, in Starlark's terms.
func jsonKind(v string) string {
	switch {
	case v == "string":
		return "a string"
	case v == "number":
		return "a number"
	case strings.HasPrefix(v, "number "):
		return strings.TrimPrefix(v, "number ")
	case v == "array":
		return "a list"
	case v == "object":
		return "a dict"
	case v == "bool":
		return "True or False"
	}
	return v
}

func goKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "True or False"
	case reflect.Slice:
		return "a list of " + plural(goKind(t.Elem()))
	case reflect.Map:
		return "a dict of " + plural(goKind(t.Elem()))
	}
	return t.String()
}

func plural(kind string) string { return strings.TrimPrefix(kind, "a ") + "s" }

// ForEachClient calls f once per distinct client that open returns for
// specs (a run's units may use several regions or clouds), with the first
// spec that led to it.
func ForEachClient[C comparable](specs []map[string]any, open func(map[string]any) (C, error), f func(C, map[string]any) error) error {
	seen := map[C]bool{}
	for _, spec := range specs {
		c, err := open(spec)
		if err != nil {
			return err
		}
		if seen[c] {
			continue
		}
		seen[c] = true
		if err := f(c, spec); err != nil {
			return err
		}
	}
	return nil
}

// ReadSpec reads spec fields into a provider's typed spec S.
func ReadSpec[S any](provider string, fields map[string]any) (S, error) {
	var s S
	err := DecodeSpec(provider, fields, &s)
	return s, err
}
