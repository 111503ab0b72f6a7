package runner

import (
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/state"
)

// Align is align without the leftovers: the record of each code cell
// that has one, for views of a run (the TUI, exports, plans) that must
// pair cells and records exactly as the runner does.
func Align(cells []*lang.Cell, recs []state.CellRecord) map[int]*state.CellRecord {
	out, _ := align(cells, recs)
	return out
}

// align matches the recipe's code cells with the records of the cells
// that ran before, the way diff matches lines: the longest run of
// unchanged cells (same source) in order first, then, between two
// matches, cells with the same title, then the rest in order, which are
// the edited ones. So a cell inserted, removed or moved leaves the other
// cells their records: their journals, and what they made.
//
// It returns the record of each cell that has one, by cell index, and
// the records no cell took (cells removed from the recipe).
func align(cells []*lang.Cell, recs []state.CellRecord) (map[int]*state.CellRecord, []state.CellRecord) {
	var code []*lang.Cell
	for _, c := range cells {
		if c.Runnable() {
			code = append(code, c)
		}
	}
	n, m := len(code), len(recs)
	same := func(i, j int) bool { return recs[j].SourceHash != "" && recs[j].SourceHash == code[i].Hash() }
	// lcs[i][j]: length of the longest common run of code[i:] and recs[j:].
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if same(i, j) {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	out := map[int]*state.CellRecord{}
	taken := make([]bool, m)
	var gapCells []int
	var gapRecs []int
	closeGap := func() {
		pairGap(code, recs, gapCells, gapRecs, out, taken)
		gapCells, gapRecs = nil, nil
	}
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case same(i, j):
			closeGap()
			out[code[i].Index] = &recs[j]
			taken[j] = true
			i, j = i+1, j+1
		case lcs[i+1][j] >= lcs[i][j+1]:
			gapCells = append(gapCells, i)
			i++
		default:
			gapRecs = append(gapRecs, j)
			j++
		}
	}
	for ; i < n; i++ {
		gapCells = append(gapCells, i)
	}
	for ; j < m; j++ {
		gapRecs = append(gapRecs, j)
	}
	closeGap()
	var dropped []state.CellRecord
	for j := range recs {
		if !taken[j] {
			dropped = append(dropped, recs[j])
		}
	}
	return out, dropped
}

// pairGap pairs the unmatched cells and records between two matches:
// same title first; then, where one cell and one record are left, those
// two (an edit that also retitled the cell); else untitled ones in
// order. Two cells with different titles are not paired: a cell the
// user replaced with another must not inherit what the first one made.
func pairGap(code []*lang.Cell, recs []state.CellRecord, cells, rs []int, out map[int]*state.CellRecord, taken []bool) {
	used := map[int]bool{}
	for _, i := range cells {
		if code[i].Title == "" {
			continue
		}
		for _, j := range rs {
			if !taken[j] && recs[j].Title == code[i].Title {
				out[code[i].Index] = &recs[j]
				taken[j], used[i] = true, true
				break
			}
		}
	}
	var leftCells, leftRecs []int
	for _, i := range cells {
		if !used[i] {
			leftCells = append(leftCells, i)
		}
	}
	for _, j := range rs {
		if !taken[j] {
			leftRecs = append(leftRecs, j)
		}
	}
	if len(leftCells) == 1 && len(leftRecs) == 1 {
		out[code[leftCells[0]].Index] = &recs[leftRecs[0]]
		taken[leftRecs[0]] = true
		return
	}
	k := 0
	for _, i := range leftCells {
		if code[i].Title != "" {
			continue
		}
		for k < len(leftRecs) && recs[leftRecs[k]].Title != "" {
			k++
		}
		if k == len(leftRecs) {
			return
		}
		out[code[i].Index] = &recs[leftRecs[k]]
		taken[leftRecs[k]] = true
		k++
	}
}
