package lang

import (
	"strings"
	"testing"
)

func TestSplitCells(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		titles []string
		kinds  []string
		starts []int
	}{
		{
			name:   "no markers: one cell",
			src:    "x = 1\ny = 2\n",
			titles: []string{""}, kinds: []string{""}, starts: []int{1},
		},
		{
			name:   "code preamble is cell 0",
			src:    "x = 1\n# %% Second\ny = 2\n",
			titles: []string{"", "Second"}, kinds: []string{"", ""}, starts: []int{1, 2},
		},
		{
			name:   "comment-only preamble is prose",
			src:    "# A recipe\n# about things\n\n# %% First\nx = 1\n",
			titles: []string{"", "First"}, kinds: []string{"markdown", ""}, starts: []int{1, 4},
		},
		{
			name:   "blank preamble is no cell",
			src:    "\n\n# %% First\nx = 1\n",
			titles: []string{"First"}, kinds: []string{""}, starts: []int{3},
		},
		{
			name:   "tags set the kind and are not part of the title",
			src:    "# %% [parameters]\nn = 3\n# %% Setup [markdown]\n# text\n# %% Deploy the app [other]\nx = 1\n# %%\ny = 2\n",
			titles: []string{"", "Setup", "Deploy the app", ""}, kinds: []string{"parameters", "markdown", "", ""}, starts: []int{1, 3, 5, 7},
		},
		{
			name:   "title before the tag",
			src:    "# %% Parameters [parameters]\nn = 3\n",
			titles: []string{"Parameters"}, kinds: []string{"parameters"}, starts: []int{1},
		},
		{
			name:   "'# %%x' is not a marker",
			src:    "# %%x\nx = 1\n",
			titles: []string{""}, kinds: []string{""}, starts: []int{1},
		},
		{
			name:   "no trailing newline",
			src:    "# %% A\nx = 1",
			titles: []string{"A"}, kinds: []string{""}, starts: []int{1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cells := SplitCells(tt.src)
			if len(cells) != len(tt.titles) {
				t.Fatalf("got %d cells, want %d: %+v", len(cells), len(tt.titles), cells)
			}
			var joined strings.Builder
			for i, c := range cells {
				if c.Index != i || c.Title != tt.titles[i] || c.Kind != tt.kinds[i] || c.StartLine != tt.starts[i] {
					t.Errorf("cell %d = {index %d, title %q, kind %q, line %d}, want {%d, %q, %q, %d}",
						i, c.Index, c.Title, c.Kind, c.StartLine, i, tt.titles[i], tt.kinds[i], tt.starts[i])
				}
				joined.WriteString(c.Source)
			}
			// Splitting loses nothing but leading blank lines.
			if got, want := joined.String(), strings.TrimLeft(tt.src, "\n"); got != want {
				t.Errorf("cells do not add up to the source:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestCellHashIgnoresTitleAndTrailingSpace(t *testing.T) {
	a := SplitCells("# %% One\nx = 1\n")[0]
	b := SplitCells("# %% Renamed\nx = 1\n\n\n")[0]
	c := SplitCells("# %% One\nx = 2\n")[0]
	if a.Hash() != b.Hash() {
		t.Errorf("retitling changed the hash")
	}
	if a.Hash() == c.Hash() {
		t.Errorf("editing the code did not change the hash")
	}
}

func TestFindCell(t *testing.T) {
	cells := SplitCells("# %% Setup\n# %% Install TLJH\n# %% Install packages\n# %% About [markdown]\n# prose\n")
	for ref, want := range map[string]int{"0": 0, "2": 2, "setup": 0, "Install TLJH": 1, "install p": 2} {
		c, err := FindCell(cells, ref)
		if err != nil || c.Index != want {
			t.Errorf("FindCell(%q) = %v, %v; want cell %d", ref, c, err, want)
		}
	}
	// Each error says what is wrong and lists what would do.
	for ref, want := range map[string]string{
		"4":       "no cell 4: the recipe has cells 0 to 3",
		"-1":      "no cell -1",
		"Install": `"Install" matches 2 cells: 1 "Install TLJH", 2 "Install packages"; give its number or more of its title`,
		"nothing": `no cell is titled "nothing"; the cells are: 0 "Setup", 1 "Install TLJH", 2 "Install packages"`,
		"3":       `cell 3 "About" is prose (a markdown cell) and has no code to run`,
		"about":   `cell 3 "About" is prose`,
	} {
		c, err := FindCell(cells, ref)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("FindCell(%q) = %v, %v; want an error containing %q", ref, c, err, want)
		}
	}
}

func TestCellTags(t *testing.T) {
	cells := SplitCells("# %% Write config [after: 0, Setup db] [always]\nx = 1\n")
	c := cells[0]
	if c.Title != "Write config" || !c.Always || len(c.After) != 2 || c.After[0] != "0" || c.After[1] != "Setup db" {
		t.Errorf("parsed %+v", c)
	}
}
