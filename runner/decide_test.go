package runner

import (
	"strings"
	"sync"
	"testing"

	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/state"
)

// wording stands in for a pass's explainer: it names the keys it gets.
type wording struct{}

func (wording) describe(keys []string) string      { return strings.Join(keys, ",") + " changed" }
func (wording) worldReason(was, now string) string { return "world " + was + "->" + now }

// TestDecide walks the one decision through every rule, alone: no
// interpreter, no state, no world.
func TestDecide(t *testing.T) {
	cell := func(idx int) *lang.Cell { return &lang.Cell{Index: idx, Title: "c", Source: "# %% c\nx = 1\n"} }
	ok := func(c *lang.Cell, inputs map[string]string) *state.CellRecord {
		return &state.CellRecord{Status: state.CellOK, SourceHash: c.Hash(), Inputs: inputs}
	}
	c2 := cell(2)
	manual := cell(2)
	manual.Manual = true
	always := cell(2)
	always.Always = true
	in := map[string]string{"students": "d1"}
	none := mode{from: -1, only: -1}
	onlyAt := func(i int, needs ...int) mode {
		m := mode{from: -1, only: i, ancestors: map[int]bool{}}
		for _, n := range needs {
			m.ancestors[n] = true
		}
		return m
	}
	tests := []struct {
		name   string
		mode   mode
		turn   turn
		want   Decision
		errHas string
	}{
		{"unchanged replays", none, turn{cell: c2, record: ok(c2, in), inputs: fixed(in)}, Decision{Action: ActReplay}, ""},
		{"never ran", none, turn{cell: c2, inputs: fixed(in)}, Decision{Action: ActLive, Reason: "new"}, ""},
		{"edited", none, turn{cell: c2, record: &state.CellRecord{Status: state.CellOK, SourceHash: "old", Inputs: in}, inputs: fixed(in)}, Decision{Action: ActLive, Reason: "edited"}, ""},
		{"failed last time", none, turn{cell: c2, record: &state.CellRecord{Status: state.CellFailed, SourceHash: c2.Hash()}, inputs: fixed(in)}, Decision{Action: ActLive, Reason: "failed last time"}, ""},
		{"interrupted", none, turn{cell: c2, record: &state.CellRecord{Status: state.CellRunning, SourceHash: c2.Hash()}, inputs: fixed(in)}, Decision{Action: ActLive, Reason: "interrupted last time"}, ""},
		{"an input changed", none, turn{cell: c2, record: ok(c2, in), inputs: fixed(map[string]string{"students": "d2"})}, Decision{Action: ActLive, Reason: "students changed"}, ""},
		{"an input gone", none, turn{cell: c2, record: ok(c2, in), inputs: fixed(map[string]string{})}, Decision{Action: ActLive, Reason: "students changed"}, ""},
		{"the world changed", none, turn{cell: c2, record: ok(c2, map[string]string{worldKey: "a"}), inputs: fixed(map[string]string{worldKey: "b"})}, Decision{Action: ActLive, Reason: "world a->b"}, ""},
		{"older kumo: trust the source", none, turn{cell: c2, record: ok(c2, nil), inputs: fixed(in)}, Decision{Action: ActReplay}, ""},
		{"what it made vanished", none, turn{cell: c2, record: ok(c2, in), inputs: fixed(in), again: "web-1 is gone"}, Decision{Action: ActLive, Reason: "web-1 is gone"}, ""},
		{"[always]", none, turn{cell: always, record: ok(always, in), inputs: fixed(in)}, Decision{Action: ActLive, Reason: "[always]"}, ""},
		{"[manual] skips", none, turn{cell: manual, record: ok(manual, in), inputs: fixed(in)}, Decision{Action: ActSkip, Reason: "[manual]: runs when named with --only or --from"}, ""},
		{"[manual] named by --from", mode{from: 2, only: -1}, turn{cell: manual, record: ok(manual, in), inputs: fixed(in)}, Decision{Action: ActLive, Reason: "--from"}, ""},
		{"after a failure", none, turn{cell: c2, ended: true}, Decision{Action: ActSkip}, ""},
		{"parameters", none, turn{cell: c2, isParams: true}, Decision{Action: ActParams}, ""},
		{"--from on", mode{from: 1, only: -1}, turn{cell: c2, record: ok(c2, in), inputs: fixed(in)}, Decision{Action: ActLive, Reason: "--from"}, ""},
		{"--from later", mode{from: 3, only: -1}, turn{cell: c2, record: ok(c2, in), inputs: fixed(in)}, Decision{Action: ActReplay}, ""},
		{"--only itself", onlyAt(2), turn{cell: c2, record: ok(c2, in), inputs: fixed(in)}, Decision{Action: ActLive, Reason: "--only"}, ""},
		{"--only: after it", onlyAt(1), turn{cell: c2}, Decision{Action: ActSkip}, ""},
		{"--only: not needed", onlyAt(3), turn{cell: c2, record: ok(c2, in), inputs: fixed(in)}, Decision{Action: ActSkip, Reason: "--only does not need it"}, ""},
		{"--only: needed, changed, replayed as recorded", onlyAt(3, 2), turn{cell: c2, record: ok(c2, in), inputs: fixed(map[string]string{"students": "d2"})},
			Decision{Action: ActReplay, Notice: `cell 2 "c" would run live (students changed); --only replays it as recorded`}, ""},
		{"--only: needed, never ran", onlyAt(3, 2), turn{cell: c2, inputs: fixed(in)}, Decision{}, `--only 3: cell 2 "c" must run live first (new)`},
		{"--only: parameters always", onlyAt(3), turn{cell: cell(1), isParams: true}, Decision{Action: ActParams}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decide(tt.mode, tt.turn, wording{})
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want one saying %q", err, tt.errHas)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("decide = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// Skipped cells and cells whose record decides are decided without
// digesting their inputs (a cell after a failure, or after --only's,
// may read what was never set); once digested, they are kept.
func TestDecideDigestsInputsOnlyWhenTheyDecide(t *testing.T) {
	c2 := &lang.Cell{Index: 2, Title: "c", Source: "# %% c\nx = 1\n"}
	unchanged := &state.CellRecord{Status: state.CellOK, SourceHash: c2.Hash(), Inputs: map[string]string{"x": "d"}}
	for _, tc := range []struct {
		name string
		m    mode
		t    turn
		want int // digests decide asks for
	}{
		{"after a failure", mode{from: -1, only: -1}, turn{cell: c2, record: unchanged, ended: true}, 0},
		{"after --only's cell", mode{from: -1, only: 1}, turn{cell: c2, record: unchanged}, 0},
		{"never ran", mode{from: -1, only: -1}, turn{cell: c2}, 0},
		{"unchanged", mode{from: -1, only: -1}, turn{cell: c2, record: unchanged}, 1},
	} {
		asked := 0
		tc.t.inputs = sync.OnceValue(func() map[string]string { asked++; return map[string]string{"x": "d"} })
		if _, err := decide(tc.m, tc.t, wording{}); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if asked != tc.want {
			t.Errorf("%s: decide digested the inputs %d times, want %d", tc.name, asked, tc.want)
		}
		tc.t.inputs()
		tc.t.inputs()
		if asked != 1 {
			t.Errorf("%s: inputs digested %d times in all, want once", tc.name, asked)
		}
	}
}
