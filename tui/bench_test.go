package tui

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/kumo-dev/kumo/builtins/all"
	"github.com/kumo-dev/kumo/export"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/session"
	"github.com/kumo-dev/kumo/state"
)

// recordedRun writes a recipe of cells code cells (a prose cell before
// every fifth) and a state in which each ran, printing linesPerCell
// lines of lineLen bytes from two nodes. It returns the recipe's path.
func recordedRun(b *testing.B, cells, linesPerCell, lineLen int) string {
	b.Helper()
	dir := b.TempDir()
	var src strings.Builder
	for i := 0; i < cells; i++ {
		if i%5 == 0 {
			fmt.Fprintf(&src, "# %%%% [markdown]\n# ## Part %d\n# What the next cells do, in a sentence or two.\n\n", i/5)
		}
		fmt.Fprintf(&src, "# %%%% Step %d\nx%d = %d\nprint(\"step\", x%d)\n\n", i, i, i, i)
	}
	path := filepath.Join(dir, "big.star")
	if err := os.WriteFile(path, []byte(src.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	recipe, err := lang.ReadRecipe(path, all.Globals().Has)
	if err != nil {
		b.Fatal(err)
	}
	store, err := session.OpenState(filepath.Join(dir, session.StateName), "")
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	if err := store.StartRun("big", path, nil); err != nil {
		b.Fatal(err)
	}
	text := strings.Repeat("x", lineLen)
	for _, c := range recipe.Cells {
		if !c.Runnable() {
			continue
		}
		rec := &state.CellRecord{Index: c.Index, Title: c.Title}
		if err := store.StartCell("big", rec); err != nil {
			b.Fatal(err)
		}
		for j := 0; j < linesPerCell; j++ {
			rec.Output = append(rec.Output, state.OutputLine{Source: fmt.Sprintf("web-%d", 1+j%2), Stream: state.StreamStdout, Text: text})
		}
		rec.SourceHash, rec.Status, rec.Duration = c.Hash(), state.CellOK, time.Second
		if err := store.FinishCell("big", rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := store.FinishRun("big", state.RunOK); err != nil {
		b.Fatal(err)
	}
	return path
}

// openTUI is what kumo tui does before its first frame: read the recipe
// and its parameters, open the state and hold the run, read the records,
// build the notebook and lay it out at 100x30. The caller closes the run.
func openTUI(b *testing.B, path string) (tuiModel, *session.Run) {
	prep, err := session.Prepare(path, "big", nil)
	if err != nil {
		b.Fatal(err)
	}
	run, err := session.Open(prep, func() (*state.Store, error) {
		return session.OpenState(filepath.Join(filepath.Dir(path), session.StateName), "")
	}, false)
	if err != nil {
		b.Fatal(err)
	}
	records, err := run.Store.Cells("big")
	if err != nil {
		b.Fatal(err)
	}
	m := newTUIModel(tuiConfig{title: "kumo", recipe: prep.Recipe, records: records})
	m.width, m.height = 100, 30
	m.layout()
	return m, run
}

// firstFrame opens the notebook and draws its first frame.
func firstFrame(b *testing.B, path string) string {
	m, run := openTUI(b, path)
	defer run.Close()
	return m.render()
}

// BenchmarkTUIFirstFrame: 50 cells (10 prose) with 20 recorded lines each.
func BenchmarkTUIFirstFrame(b *testing.B) {
	path := recordedRun(b, 50, 20, 60)
	b.ResetTimer()
	for b.Loop() {
		clear(proseCache) // a new process has rendered nothing yet
		clear(codeCache)
		if !strings.Contains(firstFrame(b, path), "Step 0") {
			b.Fatal("the first frame does not show the first cell")
		}
	}
}

// BenchmarkTUIFrameWhileRunning: drawing again after a line of output
// from a running cell, the 50-cell notebook open.
func BenchmarkTUIFrameWhileRunning(b *testing.B) {
	path := recordedRun(b, 50, 20, 60)
	opened, run := openTUI(b, path)
	defer run.Close()
	var m tea.Model = opened
	m, _ = m.Update(cellStartedMsg{idx: 30, reason: "edited"})
	b.ResetTimer()
	for b.Loop() {
		m, _ = m.Update(cellOutputMsg{idx: 30, line: state.OutputLine{Source: "web-1", Stream: state.StreamStdout, Text: "a line"}})
		_ = m.View()
	}
}

// BenchmarkTUIMemory10MB: 10 MB of recorded output (50 cells of 2,000
// lines of 100 bytes); reports the heap the open notebook holds, and
// what focus mode on one cell adds.
func BenchmarkTUIMemory10MB(b *testing.B) {
	path := recordedRun(b, 50, 2000, 100)
	b.ResetTimer()
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m, run := openTUI(b, path)
		_ = m.render()
		m.notebook.focus = true
		m.notebook.selected = 1
		m.layout()
		_ = m.render()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "heap-MB")
		runtime.KeepAlive(m)
		run.Close()
	}
}

// BenchmarkExport: the 50-cell run as ipynb.
func BenchmarkExport(b *testing.B) {
	path := recordedRun(b, 50, 20, 60)
	store, err := session.OpenState(filepath.Join(filepath.Dir(path), session.StateName), "")
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	recipe, err := lang.ReadRecipe(path, all.Globals().Has)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		nb, err := export.FromState(store, recipe, "big", "bench")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := nb.IPYNB(); err != nil {
			b.Fatal(err)
		}
	}
}
