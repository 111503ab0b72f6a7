package runner

import (
	"encoding/json"
	"sync"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/lang"
)

// eventBuffer passes events on, except that it holds those of a pass's
// replayed cells until the first live cell (or the end): should the
// world check before that live cell ask for the pass to start over, the
// held events are dropped, and the user sees every cell once.
type eventBuffer struct {
	out     Events
	mu      sync.Mutex
	holding bool
	held    []func(Events)
}

func (b *eventBuffer) hold() {
	b.mu.Lock()
	b.holding = true
	b.mu.Unlock()
}

func (b *eventBuffer) flush() {
	b.mu.Lock()
	held := b.held
	b.held, b.holding = nil, false
	b.mu.Unlock()
	if b.out != nil {
		for _, f := range held {
			f(b.out)
		}
	}
}

func (b *eventBuffer) discard() {
	b.mu.Lock()
	b.held, b.holding = nil, false
	b.mu.Unlock()
}

func (b *eventBuffer) send(f func(Events)) {
	if b.out == nil {
		return
	}
	b.mu.Lock()
	if b.holding {
		b.held = append(b.held, f)
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	f(b.out)
}

func (b *eventBuffer) started(c *lang.Cell, s CellStart) {
	b.send(func(e Events) { e.CellStarted(c, s) })
}

func (b *eventBuffer) finished(c *lang.Cell, r CellResult) {
	b.send(func(e Events) { e.CellFinished(c, r) })
}

func (b *eventBuffer) output(c *lang.Cell, source, stream, text string) {
	b.send(func(e Events) { e.Output(c, source, stream, text) })
}

func (b *eventBuffer) status(c *lang.Cell, text string) {
	b.send(func(e Events) { e.Status(c, text) })
}

// notice is never held: it tells why a pass starts over.
func (b *eventBuffer) notice(text string) {
	if b.out != nil {
		b.out.Notice(text)
	}
}

// paramsJSON renders the effective parameters for the state (kumo
// status): a JSON object of their values, strings masked.
func paramsJSON(names []string, globals starlark.StringDict, m *builtins.Masker) string {
	out := map[string]any{}
	for _, name := range names {
		if v := globals[name]; v != nil {
			out[name] = toJSON(v, m)
		}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func toJSON(v starlark.Value, m *builtins.Masker) any {
	switch v := v.(type) {
	case starlark.NoneType:
		return nil
	case starlark.Bool:
		return bool(v)
	case starlark.Int:
		if i, ok := v.Int64(); ok {
			return i
		}
		return v.String()
	case starlark.Float:
		return float64(v)
	case starlark.String:
		return m.Mask(string(v))
	case starlark.Indexable: // lists and tuples
		out := []any{}
		for i := 0; i < v.Len(); i++ {
			out = append(out, toJSON(v.Index(i), m))
		}
		return out
	case *starlark.Dict:
		out := map[string]any{}
		for _, kv := range v.Items() {
			k, ok := starlark.AsString(kv[0])
			if !ok {
				k = kv[0].String()
			}
			out[k] = toJSON(kv[1], m)
		}
		return out
	}
	return m.Mask(v.String())
}
