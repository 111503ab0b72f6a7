package lang

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Every shipped recipe becomes a notebook and back byte for byte, and
// reads, as a notebook, into the same cells.
func TestRecipesRoundTripThroughNotebooks(t *testing.T) {
	var files []string
	filepath.WalkDir("../recipes", func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".star") {
			files = append(files, path)
		}
		return nil
	})
	if len(files) < 10 {
		t.Fatalf("found %d recipes", len(files))
	}
	parsed := 0
	defer func() {
		if parsed < len(files) {
			t.Errorf("only %d of %d recipes compared cell by cell", parsed, len(files))
		}
	}()
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		nb, err := NotebookFromPercent(string(src))
		if err != nil {
			t.Errorf("%s: to a notebook: %v", path, err)
			continue
		}
		back, err := PercentFromNotebook(nb)
		if err != nil {
			t.Errorf("%s: back from a notebook: %v", path, err)
			continue
		}
		if back != string(src) {
			t.Errorf("%s: the round trip changed it:\n%s", path, firstDifference(string(src), back))
			continue
		}
		anyName := func(string) bool { return true } // builtins and predeclared names
		star, err := ParseRecipe(path, string(src), anyName)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		parsed++
		// The notebook shows each cell's body as its source, prose as Markdown.
		var doc jupyterNotebook
		if err := json.Unmarshal(nb, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Cells) != len(star.Cells) {
			t.Errorf("%s: %d cells became %d notebook cells", path, len(star.Cells), len(doc.Cells))
			continue
		}
		for i, c := range star.Cells {
			want, got := c.Body(), strings.Trim(string(doc.Cells[i].Source), "\n")
			if !c.Runnable() {
				want = c.Prose()
			}
			if got != want || (doc.Cells[i].CellType == "code") != c.Runnable() {
				t.Errorf("%s: cell %d (%s) is %s %q in the notebook, want %q", path, i, c.Title, doc.Cells[i].CellType, got, want)
			}
		}
	}
}

func firstDifference(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return "line " + itoa(i+1) + ": " + al[i] + "\n   became: " + bl[i]
		}
	}
	return "lengths " + itoa(len(al)) + " and " + itoa(len(bl))
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// A notebook written by Jupyter (its own kernelspec, a parameters cell,
// prose, a raw cell, outputs) becomes a recipe kumo reads and back,
// keeping its cells and metadata; outputs and counts are dropped.
func TestNotebookRoundTripsThroughARecipe(t *testing.T) {
	const jupyter = `{
 "cells": [
  {"cell_type": "markdown", "id": "a1", "metadata": {}, "source": ["# A class hub\n", "\n", "For **40** students."]},
  {"cell_type": "code", "execution_count": 3, "id": "b2", "metadata": {"tags": ["parameters"]}, "outputs": [{"output_type": "stream", "name": "stdout", "text": ["x\n"]}], "source": ["students = 40\n", "flavor = \"small\""]},
  {"cell_type": "code", "execution_count": null, "id": "c3", "metadata": {"title": "Create the hub", "tags": ["always"]}, "outputs": [], "source": "n = students\nprint(n)"},
  {"cell_type": "raw", "id": "d4", "metadata": {}, "source": ["raw text"]},
  {"cell_type": "code", "execution_count": null, "id": "e5", "metadata": {}, "outputs": [], "source": []}
 ],
 "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}, "authors": ["kumo"]},
 "nbformat": 4, "nbformat_minor": 5
}`
	text, err := PercentFromNotebook([]byte(jupyter))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# ---\n# jupyter:\n#   authors:\n#     - kumo\n", "# %% [markdown]\n# # A class hub\n#\n# For **40** students.\n",
		"# %% [parameters]\nstudents = 40\n", "# %% Create the hub [always]\nn = students\n", "# %% [raw]\n# raw text\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("recipe text lacks %q:\n%s", want, text)
		}
	}
	r, err := ParseRecipe("class.ipynb", text, nil)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, c := range r.Cells {
		kinds = append(kinds, c.Kind+":"+c.Title)
	}
	if got := strings.Join(kinds, ","); got != "markdown:,parameters:,:Create the hub,raw:,:" {
		t.Errorf("cells read = %s", got)
	}
	if !r.Cells[2].Always || len(r.Params) != 2 || r.Cells[0].Prose() != "# A class hub\n\nFor **40** students." {
		t.Errorf("tags, parameters or prose lost: always=%v params=%v prose=%q", r.Cells[2].Always, r.Params, r.Cells[0].Prose())
	}
	back, err := NotebookFromPercent(text)
	if err != nil {
		t.Fatal(err)
	}
	var in, out map[string]any
	json.Unmarshal([]byte(jupyter), &in)
	json.Unmarshal(back, &out)
	if !reflect.DeepEqual(in["metadata"], withoutDefaults(out["metadata"])) {
		t.Errorf("metadata %v became %v", in["metadata"], out["metadata"])
	}
	inCells, outCells := in["cells"].([]any), out["cells"].([]any)
	if len(inCells) != len(outCells) {
		t.Fatalf("%d cells became %d", len(inCells), len(outCells))
	}
	for i := range inCells {
		a, b := inCells[i].(map[string]any), outCells[i].(map[string]any)
		if a["cell_type"] != b["cell_type"] || joined(a["source"]) != joined(b["source"]) || !reflect.DeepEqual(a["metadata"], b["metadata"]) {
			t.Errorf("cell %d: %v became %v", i, a, b)
		}
		if b["cell_type"] == "code" && (len(b["outputs"].([]any)) != 0 || b["execution_count"] != nil) {
			t.Errorf("cell %d keeps a run's outputs: %v", i, b)
		}
	}
}

func withoutDefaults(m any) any {
	out := map[string]any{}
	for k, v := range m.(map[string]any) {
		if k != "language_info" {
			out[k] = v
		}
	}
	return out
}

func joined(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []any:
		var b strings.Builder
		for _, p := range s {
			b.WriteString(p.(string))
		}
		return b.String()
	}
	return ""
}

// What a notebook cell cannot be in a recipe is said, with the cell.
func TestNotebookCellsARecipeCannotHold(t *testing.T) {
	for _, tc := range []struct{ nb, want string }{
		{`{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "metadata": {}, "source": "x = 1\n# %% two\ny = 2"}]}`, `cell 0 ("x = 1") has a "# %% two" line inside it`},
		{`{"nbformat": 3, "metadata": {}, "worksheets": []}`, "nbformat 3"},
		{`not json`, "not a Jupyter notebook"},
	} {
		if _, err := PercentFromNotebook([]byte(tc.nb)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("PercentFromNotebook = %v, want %q", err, tc.want)
		}
	}
}

// A cell's first line may be kumo's own marker, tags and all: that is
// how a notebook cell is given a title or a tag such as [always] from
// inside Jupyter.
func TestNotebookCellMayCarryItsMarker(t *testing.T) {
	nb := `{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "metadata": {}, "source": "# %% Check [always]\nprint(1)"}]}`
	text, err := PercentFromNotebook([]byte(nb))
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseRecipe("n.ipynb", text, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Cells) != 1 || r.Cells[0].Title != "Check" || !r.Cells[0].Always {
		t.Errorf("cells = %+v from %q", r.Cells, text)
	}
}

// Editing a notebook as a recipe keeps the outputs, ids and metadata of
// the cells it leaves alone; an edited cell loses its outputs (they are
// of another source), and ids stay unique.
func TestUpdateNotebookKeepsUntouchedCells(t *testing.T) {
	old := `{"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "kumo", "display_name": "kumo", "language": "starlark"}, "authors": ["a"]},
 "cells": [
  {"cell_type": "code", "id": "cell-1", "metadata": {"collapsed": true}, "execution_count": 1, "outputs": [{"output_type": "stream", "name": "stdout", "text": "one\n"}], "source": "print(1)"},
  {"cell_type": "code", "id": "x2", "metadata": {}, "execution_count": 2, "outputs": [{"output_type": "stream", "name": "stdout", "text": "two\n"}], "source": "print(2)"}
 ]}`
	text, err := PercentFromNotebook([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(text, "print(2)", "print(22)", 1)
	edited = strings.Replace(edited, "# %%\nprint(1)", "# %%\nprint(0)\n\n# %%\nprint(1)", 1)
	out, err := UpdateNotebook([]byte(old), edited)
	if err != nil {
		t.Fatal(err)
	}
	var nb struct {
		Metadata map[string]any   `json:"metadata"`
		Cells    []map[string]any `json:"cells"`
	}
	if err := json.Unmarshal(out, &nb); err != nil {
		t.Fatal(err)
	}
	if len(nb.Cells) != 3 {
		t.Fatalf("%d cells: %s", len(nb.Cells), out)
	}
	kept := nb.Cells[1]
	if sourceText(kept["source"]) != "print(1)" || kept["id"] != "cell-1" || kept["execution_count"] != float64(1) || len(kept["outputs"].([]any)) != 1 || kept["metadata"].(map[string]any)["collapsed"] != true {
		t.Errorf("untouched cell = %v", kept)
	}
	if c := nb.Cells[2]; sourceText(c["source"]) != "print(22)" || len(c["outputs"].([]any)) != 0 {
		t.Errorf("edited cell = %v", c)
	}
	ids := map[any]bool{}
	for _, c := range nb.Cells {
		if ids[c["id"]] {
			t.Errorf("id %v twice", c["id"])
		}
		ids[c["id"]] = true
	}
	if nb.Metadata["authors"] == nil {
		t.Errorf("notebook metadata lost: %v", nb.Metadata)
	}
}

// A recipe shipped as a notebook too is its .star converted: the two
// cannot drift apart (make notebooks writes them again).
func TestShippedNotebooksAreTheirRecipes(t *testing.T) {
	found, _ := filepath.Glob("../recipes/*/*.ipynb")
	if len(found) == 0 {
		t.Fatal("no notebook shipped in recipes/")
	}
	for _, nb := range found {
		src, err := os.ReadFile(strings.TrimSuffix(nb, ".ipynb") + ".star")
		if err != nil {
			t.Errorf("%s has no .star beside it: %v", nb, err)
			continue
		}
		want, err := NotebookFromPercent(string(src))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(nb); string(got) != string(want) {
			t.Errorf("%s is not its .star converted: run make notebooks", nb)
		}
	}
}
