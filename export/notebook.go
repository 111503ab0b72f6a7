// Package export writes a run as an executed notebook: the record of
// what a recipe did, as papermill leaves one. The recipe's cells come
// with what the state recorded of them (status, output, error, times),
// as Jupyter's nbformat 4.5, as Markdown, or as HTML.
package export

import (
	"strings"
	"time"

	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/runner"
	"github.com/kumo-dev/kumo/state"
)

// Run is what the notebook says about the run as a whole.
type Run struct {
	Name       string
	Title      string // the recipe's first heading, the page's title
	Recipe     string // the recipe's path
	Params     string // JSON object of the effective parameters, secrets masked
	Status     state.RunStatus
	StartedAt  time.Time
	FinishedAt time.Time
	Version    string   // kumo's
	Providers  []string // where the run's nodes live
}

// Status is where a cell stands in the record.
type Status string

const (
	NotRun  Status = "not run" // no record: never reached
	Running Status = "running" // started, not finished (running now, or killed)
	OK      Status = "ok"
	Failed  Status = "failed"
	Prose   Status = "prose" // a markdown cell
)

// A Cell is one recipe cell with its record.
type Cell struct {
	*lang.Cell
	Status Status
	// Changed: the cell was edited after its record was made, so the
	// output shown is the earlier version's.
	Changed  bool
	Output   state.Output
	Error    string
	Start    time.Time
	Duration time.Duration
	// Count numbers the cells that ran in notebook order, as papermill,
	// which runs a notebook top to bottom, leaves them (Jupyter's
	// execution count); 0 if it never ran. When each ran is in its
	// metadata.
	Count int
}

// Notebook is a run's record, cell by cell.
type Notebook struct {
	Run   Run
	Cells []*Cell
}

// Build pairs the recipe's cells with the run's records the way the
// runner does, and numbers them in the order they last ran.
func Build(recipe *lang.Recipe, records []state.CellRecord, run Run) *Notebook {
	byCell := runner.Align(recipe.Cells, records)
	nb := &Notebook{Run: run}
	var ran []*Cell
	for _, c := range recipe.Cells {
		cell := &Cell{Cell: c, Status: NotRun}
		if !c.Runnable() {
			cell.Status = Prose
		}
		if rec := byCell[c.Index]; rec != nil {
			cell.Changed = rec.SourceHash != c.Hash()
			cell.Output, cell.Error, cell.Duration = rec.Output, rec.Error, rec.Duration
			cell.Start = rec.UpdatedAt.Add(-rec.Duration)
			switch rec.Status {
			case state.CellOK:
				cell.Status = OK
			case state.CellFailed:
				cell.Status = Failed
			default:
				cell.Status, cell.Start = Running, rec.UpdatedAt
			}
			ran = append(ran, cell)
		}
		nb.Cells = append(nb.Cells, cell)
	}
	for i, c := range ran {
		c.Count = i + 1
	}
	nb.Run.Title = recipeTitle(recipe)
	return nb
}

// recipeTitle is the first Markdown heading of the recipe's prose, ""
// if it has none.
func recipeTitle(recipe *lang.Recipe) string {
	for _, c := range recipe.Cells {
		if c.Runnable() {
			continue
		}
		for _, line := range strings.Split(c.Prose(), "\n") {
			if t, ok := strings.CutPrefix(strings.TrimSpace(line), "#"); ok {
				return strings.TrimSpace(strings.TrimLeft(t, "#"))
			}
		}
	}
	return ""
}

// A block is one node's (or the recipe's) lines on one stream: how
// outputs are written, each node's apart.
type block struct {
	Source string
	Stream state.Stream
	Lines  []string
}

// blocks groups a cell's output by source and stream, in the order each
// first printed; print() lines and kumo's notes share the recipe's block.
func blocks(o state.Output) []block {
	var out []block
	at := map[[2]string]int{}
	for _, l := range o {
		stream := l.Stream
		if stream != state.StreamStderr {
			stream = state.StreamStdout
		}
		key := [2]string{l.Source, string(stream)}
		i, ok := at[key]
		if !ok {
			i = len(out)
			at[key] = i
			out = append(out, block{Source: l.Source, Stream: stream})
		}
		out[i].Lines = append(out[i].Lines, l.Display())
	}
	return out
}

// errorName is the first line of a recorded error, without its position.
func errorValue(e string) string {
	line, _, _ := strings.Cut(e, "\n")
	return line
}
