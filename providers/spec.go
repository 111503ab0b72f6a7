package providers

// Spec fields come from YAML (ints) or Starlark (int64), and from JSON in
// the state (float64): these read them whatever their origin.

// SpecString reads a string field, "" when absent.
func SpecString(spec map[string]any, k string) string {
	s, _ := spec[k].(string)
	return s
}

// SpecInt reads a number field, 0 when absent.
func SpecInt(spec map[string]any, k string) int {
	return asInt(spec[k])
}

// SpecInts reads a list of numbers.
func SpecInts(spec map[string]any, k string) []int {
	var out []int
	if list, ok := spec[k].([]any); ok {
		for _, x := range list {
			out = append(out, asInt(x))
		}
	}
	return out
}

func asInt(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case int64:
		return int(n)
	case float64:
		return int(n)
	}
	return 0
}

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
