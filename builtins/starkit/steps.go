package starkit

import (
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// A step is a stdlib call a recipe makes (pkg.install, slurm.configure).
// Builtins name the step they work for in their live status lines, so a
// long package install reads "pkg.install on 3 nodes" rather than
// "ssh_run". A stdlib module's public functions are the fields of the
// struct it exports; their names are learnt when the module is loaded.

const stepsKey = "kumo.steps"

type stepNames map[*starlark.Function]string

// LearnSteps records the public functions of a loaded stdlib module.
func LearnSteps(thread *starlark.Thread, globals starlark.StringDict) {
	names, _ := thread.Local(stepsKey).(stepNames)
	if names == nil {
		names = stepNames{}
		thread.SetLocal(stepsKey, names)
	}
	for modName, v := range globals {
		s, ok := v.(*starlarkstruct.Struct)
		if !ok {
			continue
		}
		for _, field := range s.AttrNames() {
			if fn, err := s.Attr(field); err == nil {
				if f, ok := fn.(*starlark.Function); ok {
					if _, known := names[f]; !known {
						names[f] = modName + "." + field
					}
				}
			}
		}
	}
}

// StepName names the stdlib call the builtin running on thread works
// for: "pkg.install", or "slurm.configure › pkg.install" when one step
// calls another. It is "" when the recipe called the builtin itself.
func StepName(thread *starlark.Thread) string {
	names, _ := thread.Local(stepsKey).(stepNames)
	if names == nil {
		return ""
	}
	var outer, inner string
	for depth := thread.CallStackDepth() - 1; depth >= 0; depth-- {
		f, ok := thread.DebugFrame(depth).Callable().(*starlark.Function)
		if !ok {
			continue
		}
		if name, ok := names[f]; ok {
			if outer == "" {
				outer = name
			}
			inner = name
		}
	}
	if outer == inner {
		return outer
	}
	return strings.Join([]string{outer, inner}, " › ")
}
