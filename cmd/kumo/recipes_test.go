package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kumo-dev/kumo/builtins/all"
	"github.com/kumo-dev/kumo/lang"
)

// Every recipe kumo ships reads, names only known globals, and loads
// modules that exist: including those no test runs here (moodle.star
// needs a cloud and the internet).
func TestShippedRecipesRead(t *testing.T) {
	files, err := filepath.Glob("../../recipes/*/*.star")
	if err != nil {
		t.Fatal(err)
	}
	top, _ := filepath.Glob("../../recipes/*.star")
	files = append(files, top...)
	recipes := 0
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(src), "# %%") {
			continue // a module the recipes beside it load
		}
		recipes++
		r, err := lang.ReadRecipe(path, all.Globals().Has)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if r.ParamCell() == nil {
			t.Errorf("%s: no parameters cell", path)
		}
		session := lang.NewInterpreter(filepath.Dir(path), all.Globals())
		for _, deps := range r.Deps {
			if deps == nil {
				continue // a prose cell
			}
			for _, m := range deps.Loads {
				if _, err := session.ModuleDigest(m); err != nil {
					t.Errorf("%s: load(%q): %v", path, m, err)
				}
			}
		}
	}
	if recipes < 9 {
		t.Errorf("found %d recipes; the slurm, jupyterhub and webapp families are missing", recipes)
	}
}
