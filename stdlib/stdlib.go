// Package stdlib holds the Starlark modules embedded in kumo, loaded from
// recipes as load("@stdlib//name.star", ...).
package stdlib

import (
	"embed"
	"io/fs"
	"strings"
)

// FS holds every module of the standard library.
//
//go:embed *.star
var FS embed.FS

// Names lists the modules, for error messages and `kumo doc`.
func Names() []string {
	entries, _ := fs.ReadDir(FS, ".")
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".star") {
			names = append(names, e.Name())
		}
	}
	return names
}
