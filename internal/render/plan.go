package render

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/runner"
)

// Totals adds up the nodes a plan makes and deletes.
type Totals struct {
	Create    map[string]int `json:"create"` // "provider/flavor" -> nodes
	Delete    int            `json:"delete"`
	PriceHour float64        `json:"price_hour"` // of the nodes made, where known
	Unpriced  []string       `json:"unpriced,omitempty"`
	Commands  int            `json:"commands"`
	// Open: some cells' effects are known only when they run.
	Open bool `json:"incomplete"`
}

func TotalsOf(p *runner.Plan) Totals {
	t := Totals{Create: map[string]int{}}
	unpriced := map[string]bool{}
	for _, c := range p.Cells {
		if c.Open != "" || c.Action == runner.PlanMaybe {
			t.Open = true
		}
		for _, e := range c.Effects {
			switch e.Kind {
			case builtins.EffectCreate:
				if e.Nodes == 0 {
					continue
				}
				key := e.Provider + "/" + e.Flavor
				t.Create[key] += e.Nodes
				if e.PriceHour > 0 {
					t.PriceHour += e.PriceHour * float64(e.Nodes)
				} else if !unpriced[key] {
					unpriced[key] = true
					t.Unpriced = append(t.Unpriced, key)
				}
			case builtins.EffectDelete:
				t.Delete += e.Nodes
			case builtins.EffectCommand:
				t.Commands++
			}
		}
	}
	sort.Strings(t.Unpriced)
	return t
}

// WritePlan prints a plan for a reader; the TUI shows the same text.
func WritePlan(w io.Writer, cells []*lang.Cell, plan *runner.Plan, st Style) {
	for _, c := range plan.Cells {
		label := CellLabel(cells[c.Index])
		switch c.Action {
		case runner.PlanReplay:
			fmt.Fprintln(w, st.Dim("  ↺ "+label+"  replays"))
		case runner.PlanSkip:
			why := ""
			if c.Reason != "" {
				why = ": " + c.Reason
			}
			fmt.Fprintln(w, st.Dim("  · "+label+"  skipped"+why))
		case runner.PlanFail:
			fmt.Fprintln(w, st.Red("  ✘ "+label+"  would fail"))
			fmt.Fprintln(w, st.Red(IndentLines(c.Error, "      ")))
		default:
			mark := "▶"
			if c.Action == runner.PlanMaybe {
				mark = "?"
			}
			fmt.Fprintf(w, "  %s %s  %s: %s\n", st.Paint("1", mark), label, c.Action, c.Reason)
			for _, e := range c.Effects {
				line := fmt.Sprintf("      line %-4d %s", e.Line, e.What)
				if e.Kind == builtins.EffectCreate && e.PriceHour > 0 && e.Nodes > 0 {
					line += fmt.Sprintf("  ($%.4f/h)", e.PriceHour*float64(e.Nodes))
				}
				if e.Kind == builtins.EffectCreate || e.Kind == builtins.EffectDelete {
					line = st.Paint("1", line)
				}
				fmt.Fprintln(w, line)
			}
			if c.Guess {
				fmt.Fprintln(w, st.Dim("      (it branches on a value known only when it runs: the calls above may differ)"))
			}
			if c.Open != "" {
				fmt.Fprintln(w, st.Dim("      … the rest is known when it runs: "+c.Open))
			}
		}
	}
	t := TotalsOf(plan)
	var parts []string
	var keys []string
	for k := range t.Create {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d × %s", t.Create[k], k))
	}
	made := "no nodes made"
	if len(parts) > 0 {
		made = "nodes made: " + strings.Join(parts, ", ")
	}
	fmt.Fprintf(w, "%s; %d deleted; %s", made, t.Delete, CountOf(t.Commands, "command"))
	if t.PriceHour > 0 {
		fmt.Fprintf(w, "; $%.4f/h on demand", t.PriceHour)
	}
	if len(t.Unpriced) > 0 {
		fmt.Fprintf(w, " (no price for %s)", strings.Join(t.Unpriced, ", "))
	}
	fmt.Fprintln(w)
	if t.Open {
		fmt.Fprintln(w, st.Dim("some effects are known only when the cells run (above): the totals count what is known"))
	}
	if planHasUnknowns(plan) {
		fmt.Fprintln(w, st.Dim("‹nodes (line 12)› and the like: a value a call gives when its cell runs (the nodes it reads, their addresses)"))
	}
}

// planHasUnknowns reports whether an effect names a value not known yet.
func planHasUnknowns(plan *runner.Plan) bool {
	for _, c := range plan.Cells {
		for _, e := range c.Effects {
			if strings.Contains(e.What, "‹") {
				return true
			}
		}
	}
	return false
}
