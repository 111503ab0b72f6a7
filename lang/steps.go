package lang

import (
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// wrapSteps is globals with each exported struct's functions replaced by
// wrap's stand-ins.
func wrapSteps(globals starlark.StringDict, wrap func(string, *starlark.Function) starlark.Value) starlark.StringDict {
	out := starlark.StringDict{}
	for name, v := range globals {
		out[name] = v
		s, ok := v.(*starlarkstruct.Struct)
		if !ok {
			continue
		}
		fields := starlark.StringDict{}
		for _, field := range s.AttrNames() {
			fv, _ := s.Attr(field)
			if f, ok := fv.(*starlark.Function); ok {
				fv = wrap(name+"."+field, f)
			}
			fields[field] = fv
		}
		ns := starlarkstruct.FromStringDict(s.Constructor(), fields)
		ns.Freeze()
		out[name] = ns
	}
	out.Freeze()
	return out
}
