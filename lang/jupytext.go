package lang

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// A recipe may be a Jupyter notebook (.ipynb): kumo reads it as the
// recipe text Jupytext's percent format gives, and writes a recipe as a
// notebook the same way. Code cells are cells; markdown and raw cells are
// prose, their lines as "# " comments; a cell's title is its metadata's
// "title" and kumo's tags are its metadata's "tags" (papermill's
// "parameters" among them); the notebook's own metadata, but for what
// kumo writes into every notebook, is a "# ---" YAML header, as Jupytext
// writes it. Converting a recipe to a notebook and back gives the same
// bytes; a notebook converted and back keeps its cells' types, sources,
// titles and tags and its metadata. Outputs, execution counts and other
// cell metadata are a run's record, not the recipe, and are dropped.

// IsNotebook reports whether path names a notebook rather than a .star file.
func IsNotebook(path string) bool { return strings.HasSuffix(strings.ToLower(path), ".ipynb") }

// KernelSpec is the kernelspec of the notebooks kumo writes: its kernel.
func KernelSpec() map[string]any {
	return map[string]any{"display_name": "kumo", "language": "starlark", "name": "kumo"}
}

// LanguageInfo is their language_info: Starlark, highlighted as the
// Python dialect it is.
func LanguageInfo() map[string]any {
	return map[string]any{"name": "starlark", "file_extension": ".star", "mimetype": "text/x-starlark", "codemirror_mode": "python", "pygments_lexer": "python3"}
}

// notebookDefaults is the metadata every notebook kumo writes holds: a
// header shows only what differs.
var notebookDefaults = map[string]any{"kernelspec": KernelSpec(), "language_info": LanguageInfo()}

// jupyterNotebook is the part of nbformat 4 a recipe keeps.
type jupyterNotebook struct {
	Cells         []jupyterCell  `json:"cells"`
	Metadata      map[string]any `json:"metadata"`
	NBFormat      int            `json:"nbformat"`
	NBFormatMinor int            `json:"nbformat_minor"`
}

type jupyterCell struct {
	ID       string         `json:"id,omitempty"`
	CellType string         `json:"cell_type"`
	Metadata map[string]any `json:"metadata"`
	Source   multiline      `json:"source"`
}

// MarshalJSON gives code cells the outputs and execution count nbformat
// wants of them (empty: a recipe has not run), and other cells neither.
func (c jupyterCell) MarshalJSON() ([]byte, error) {
	m := map[string]any{"cell_type": c.CellType, "metadata": c.Metadata, "source": c.Source}
	if c.ID != "" {
		m["id"] = c.ID
	}
	if c.CellType == "code" {
		m["outputs"], m["execution_count"] = []any{}, nil
	}
	return json.Marshal(m)
}

// multiline is nbformat's string that may be written as a list of lines.
type multiline string

func (m *multiline) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*m = multiline(s)
		return nil
	}
	var parts []string
	if err := json.Unmarshal(b, &parts); err != nil {
		return err
	}
	*m = multiline(strings.Join(parts, ""))
	return nil
}

func (m multiline) MarshalJSON() ([]byte, error) {
	out := strings.SplitAfter(string(m), "\n")
	if out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return json.Marshal(out)
}

// kumoCellMeta is what a cell's metadata.kumo keeps of its percent form
// when that is not the form kumo writes by default.
type kumoCellMeta struct {
	Marker      *string `json:"marker,omitempty"`             // the marker line as written, or "" for none
	BlankBefore int     `json:"blank_before,omitempty"`       // blank lines between the marker and the body
	BlankAfter  *int    `json:"lines_to_next_cell,omitempty"` // blank lines after the body (default 1; 0 after the last cell)
}

// PercentFromNotebook is the recipe text of an .ipynb document.
func PercentFromNotebook(data []byte) (string, error) {
	var nb jupyterNotebook
	if err := json.Unmarshal(data, &nb); err != nil {
		return "", fmt.Errorf("not a Jupyter notebook (nbformat 4 JSON): %v", err)
	}
	if nb.NBFormat != 4 {
		return "", fmt.Errorf("nbformat %d: kumo reads nbformat 4 notebooks (Jupyter's since 2015); save it again with a current Jupyter", nb.NBFormat)
	}
	var b strings.Builder
	meta := maps.Clone(nb.Metadata)
	fileMeta, _ := meta["kumo_percent"].(map[string]any)
	delete(meta, "kumo_percent")
	for k, v := range notebookDefaults {
		if reflect.DeepEqual(jsonNormal(meta[k]), jsonNormal(v)) {
			delete(meta, k)
		}
	}
	if len(meta) > 0 {
		var y bytes.Buffer
		enc := yaml.NewEncoder(&y)
		enc.SetIndent(2) // as Jupytext writes it
		if err := enc.Encode(map[string]any{"jupyter": jsonNormal(meta)}); err != nil {
			return "", err
		}
		b.WriteString("# ---\n")
		for _, line := range strings.Split(strings.TrimRight(y.String(), "\n"), "\n") {
			b.WriteString(strings.TrimRight("# "+line, " ") + "\n")
		}
		b.WriteString("# ---\n\n")
	}
	if n, ok := fileMeta["blank_lines_before"].(float64); ok {
		b.WriteString(strings.Repeat("\n", int(n)))
	}
	for i, c := range nb.Cells {
		km := kumoCellMeta{}
		if raw, ok := c.Metadata["kumo"]; ok {
			j, _ := json.Marshal(raw)
			json.Unmarshal(j, &km)
		}
		marker, err := markerOf(c)
		if err != nil {
			return "", fmt.Errorf("cell %d: %v", i, err)
		}
		if km.Marker != nil {
			marker = *km.Marker
		}
		body := string(c.Source)
		if first := firstLine(body); c.CellType == "code" && isMarker(first+"\n") && marker == "# %%" {
			// The cell carries its own marker (a title or tags given
			// from inside Jupyter): it replaces the plain one.
			marker, body = first, strings.TrimPrefix(strings.TrimPrefix(body, first), "\n")
		}
		if marker != "" {
			b.WriteString(marker + "\n")
		}
		b.WriteString(strings.Repeat("\n", km.BlankBefore))
		if verbatim, _ := c.Metadata["kumo_verbatim"].(bool); c.CellType != "code" && !verbatim {
			body = commentLines(body)
		}
		for j, line := range strings.Split(body, "\n") {
			if j > 0 && isMarker(line+"\n") {
				return "", fmt.Errorf("cell %d (%q) has a %q line inside it, which would start another cell: split it into two cells", i, firstLine(string(c.Source)), strings.TrimSpace(line))
			}
		}
		if body != "" {
			b.WriteString(body + "\n")
		}
		after := 1
		if i == len(nb.Cells)-1 {
			after = 0
		}
		if km.BlankAfter != nil {
			after = *km.BlankAfter
		}
		b.WriteString(strings.Repeat("\n", after))
	}
	text := b.String()
	if v, _ := fileMeta["no_final_newline"].(bool); v {
		text = strings.TrimSuffix(text, "\n")
	}
	return text, nil
}

// markerOf is the marker line kumo writes for a notebook cell: "# %%",
// its title, then its type or tags in brackets.
func markerOf(c jupyterCell) (string, error) {
	parts := []string{"# %%"}
	if t, ok := c.Metadata["title"].(string); ok && t != "" {
		parts = append(parts, t)
	}
	switch c.CellType {
	case "markdown", "raw":
		parts = append(parts, "["+c.CellType+"]")
	case "code":
	default:
		return "", fmt.Errorf("unknown cell type %q", c.CellType)
	}
	tags, _ := c.Metadata["tags"].([]any)
	for _, t := range tags {
		s, ok := t.(string)
		if !ok || strings.ContainsAny(s, "[]\n") {
			return "", fmt.Errorf("tag %v cannot be written in a recipe's marker line", t)
		}
		parts = append(parts, "["+s+"]")
	}
	return strings.Join(parts, " "), nil
}

// commentLines writes prose as "# " comments, as Jupytext does.
func commentLines(s string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l == "" {
			lines[i] = "#"
		} else {
			lines[i] = "# " + l
		}
	}
	return strings.Join(lines, "\n")
}

// uncommentLines is commentLines undone; ok is false if a line is not
// a comment (it could not be written back the same).
func uncommentLines(lines []string) (string, bool) {
	out := make([]string, len(lines))
	for i, l := range lines {
		switch {
		case l == "#":
			out[i] = ""
		case strings.HasPrefix(l, "# "):
			out[i] = l[2:]
		default:
			return "", false
		}
	}
	return strings.Join(out, "\n"), true
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// NotebookFromPercent is the .ipynb document of a recipe's text.
func NotebookFromPercent(src string) ([]byte, error) {
	nb := jupyterNotebook{Cells: []jupyterCell{}, Metadata: map[string]any{}, NBFormat: 4, NBFormatMinor: 5}
	for k, v := range notebookDefaults {
		nb.Metadata[k] = v
	}
	fileMeta := map[string]any{}
	lines := strings.Split(src, "\n")
	if strings.HasSuffix(src, "\n") {
		lines = lines[:len(lines)-1]
	} else if src != "" {
		fileMeta["no_final_newline"] = true
	}
	i := 0
	if header, n, ok := readHeader(lines); ok {
		var y map[string]any
		if err := yaml.Unmarshal([]byte(header), &y); err != nil {
			return nil, fmt.Errorf("the recipe's \"# ---\" header is not YAML: %v", err)
		}
		if jm, ok := y["jupyter"].(map[string]any); ok {
			for k, v := range jm {
				nb.Metadata[k] = v
			}
		}
		i = n
		if i < len(lines) && lines[i] == "" {
			i++ // the blank line kumo writes after the header
		}
	}
	// Blank lines before the first cell belong to no cell.
	start := i
	for i < len(lines) && lines[i] == "" {
		i++
	}
	if i > start {
		fileMeta["blank_lines_before"] = i - start
	}
	for i < len(lines) {
		j := i + 1
		for j < len(lines) && !isMarker(lines[j]+"\n") {
			j++
		}
		c, err := percentCell(lines[i:j], len(nb.Cells) == 0 && !isMarker(lines[i]+"\n"), j == len(lines))
		if err != nil {
			return nil, err
		}
		c.ID = "cell-" + strconv.Itoa(len(nb.Cells))
		nb.Cells = append(nb.Cells, c)
		i = j
	}
	if len(fileMeta) > 0 {
		nb.Metadata["kumo_percent"] = fileMeta
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(nb); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// readHeader reads a Jupytext "# ---" header from the first lines: its
// YAML, and the index of the line after it.
func readHeader(lines []string) (string, int, bool) {
	if len(lines) == 0 || lines[0] != "# ---" {
		return "", 0, false
	}
	var y []string
	for i := 1; i < len(lines); i++ {
		if lines[i] == "# ---" {
			return strings.Join(y, "\n"), i + 1, true
		}
		l, ok := strings.CutPrefix(lines[i], "# ")
		if !ok && lines[i] != "#" {
			return "", 0, false
		}
		y = append(y, l)
	}
	return "", 0, false
}

// percentCell reads one cell: its marker line (none for a first cell
// without one), its body and the blank lines after it.
func percentCell(lines []string, noMarker, last bool) (jupyterCell, error) {
	c := jupyterCell{CellType: "code", Metadata: map[string]any{}}
	km := kumoCellMeta{}
	body := lines
	if noMarker {
		none := ""
		km.Marker = &none
	} else {
		marker := lines[0]
		body = lines[1:]
		parsed := parseMarker(marker + "\n")
		var tags []any
		for _, t := range markerTags(marker) {
			switch t {
			case "markdown", "md":
				c.CellType = "markdown"
			case "raw":
				c.CellType = "raw"
			default:
				tags = append(tags, t)
			}
		}
		if parsed.Title != "" {
			c.Metadata["title"] = parsed.Title
		}
		if len(tags) > 0 {
			c.Metadata["tags"] = tags
		}
		if canonical, err := markerOf(c); err != nil || canonical != marker {
			km.Marker = &marker
		}
	}
	for len(body) > 0 && body[0] == "" {
		km.BlankBefore++
		body = body[1:]
	}
	after := 0
	for len(body) > 0 && body[len(body)-1] == "" {
		after++
		body = body[:len(body)-1]
	}
	if (last && after != 0) || (!last && after != 1) {
		km.BlankAfter = &after
	}
	if noMarker && onlyComments(strings.Join(body, "\n")) {
		c.CellType = "markdown" // a comment-only preamble is prose
	}
	c.Source = multiline(strings.Join(body, "\n"))
	if c.CellType != "code" {
		if text, ok := uncommentLines(body); ok {
			c.Source = multiline(text)
		} else {
			// Prose with lines that are not comments stays as written.
			c.Metadata["kumo_verbatim"] = true
		}
	}
	if km != (kumoCellMeta{}) {
		c.Metadata["kumo"] = km
	}
	return c, nil
}

// markerTags are the bracketed words of a marker line, in order.
func markerTags(marker string) []string {
	var tags []string
	rest := marker
	for {
		i := strings.IndexByte(rest, '[')
		if i < 0 {
			return tags
		}
		end := strings.IndexByte(rest[i:], ']')
		if end < 0 {
			return tags
		}
		tags = append(tags, strings.TrimSpace(rest[i+1:i+end]))
		rest = rest[i+end+1:]
	}
}

// jsonNormal is v as encoding/json would read it back: maps, slices,
// float64s, so that values from YAML and JSON compare equal.
func jsonNormal(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	json.Unmarshal(b, &out)
	return out
}

// IsCellMarker reports whether line (without its newline) starts a cell.
func IsCellMarker(line string) bool { return isMarker(line) }

// NotebookCells maps the source of each code cell of a notebook to the
// marker line it has as a recipe cell ("# %% Title [parameters]"): what a
// kernel, which gets a cell's code without its metadata, needs to know of
// it.
func NotebookCells(data []byte) (map[string]string, error) {
	var nb jupyterNotebook
	if err := json.Unmarshal(data, &nb); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, c := range nb.Cells {
		if c.CellType != "code" {
			continue
		}
		if marker, err := markerOf(c); err == nil {
			out[string(c.Source)] = marker
		}
	}
	return out, nil
}

// UpdateNotebook is the notebook old with its cells and metadata as the
// recipe text src has them: a cell whose type and source are unchanged
// keeps its id, outputs, execution count and metadata, as Jupytext's
// paired notebooks do, so that editing a notebook as a recipe loses no
// output of the cells it did not touch.
func UpdateNotebook(old []byte, src string) ([]byte, error) {
	fresh, err := NotebookFromPercent(src)
	if err != nil {
		return nil, err
	}
	var was, now map[string]any
	if err := json.Unmarshal(old, &was); err != nil {
		return nil, fmt.Errorf("not a Jupyter notebook (nbformat 4 JSON): %v", err)
	}
	if err := json.Unmarshal(fresh, &now); err != nil {
		return nil, err
	}
	wasCells, _ := was["cells"].([]any)
	used := make([]bool, len(wasCells))
	for _, c := range now["cells"].([]any) {
		cell := c.(map[string]any)
		for j, o := range wasCells {
			prev, ok := o.(map[string]any)
			if !ok || used[j] || prev["cell_type"] != cell["cell_type"] || sourceText(prev["source"]) != sourceText(cell["source"]) {
				continue
			}
			used[j] = true
			for _, k := range []string{"id", "outputs", "execution_count", "attachments"} {
				if v, ok := prev[k]; ok {
					cell[k] = v
				}
			}
			meta, _ := prev["metadata"].(map[string]any)
			merged := maps.Clone(meta)
			if merged == nil {
				merged = map[string]any{}
			}
			for _, k := range []string{"title", "tags", "kumo", "kumo_verbatim"} {
				delete(merged, k)
			}
			maps.Copy(merged, cell["metadata"].(map[string]any))
			cell["metadata"] = merged
			break
		}
	}
	// A new cell's id may be one an unchanged cell kept: ids are unique.
	ids := map[string]bool{}
	for i, c := range now["cells"].([]any) {
		cell := c.(map[string]any)
		id, _ := cell["id"].(string)
		for n := 0; id == "" || ids[id]; n++ {
			id = fmt.Sprintf("cell-%d-%d", i, n)
		}
		ids[id], cell["id"] = true, id
	}
	if meta, ok := was["metadata"].(map[string]any); ok {
		merged := maps.Clone(meta)
		maps.Copy(merged, now["metadata"].(map[string]any))
		now["metadata"] = merged
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(now); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// sourceText is an nbformat source, a string or a list of lines, as text.
func sourceText(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []any:
		var b strings.Builder
		for _, p := range s {
			if t, ok := p.(string); ok {
				b.WriteString(t)
			}
		}
		return b.String()
	}
	return ""
}

// A notebook's positions are lines of its recipe text, which its user
// never sees: messages say which cell and which line of it instead. The
// notebooks read in this process are remembered for that.
var notebooks sync.Map // path -> []*Cell

func rememberNotebook(path string, cells []*Cell) { notebooks.Store(path, cells) }

var notebookPosition = regexp.MustCompile(`(\S+\.ipynb):(\d+):(\d+)`)

// notebookPositions rewrites NOTEBOOK:LINE:COL in text as the cell and
// its line: "lab.ipynb cell 4 "Count", line 1:5".
func notebookPositions(text string) string {
	if !strings.Contains(text, ".ipynb:") {
		return text
	}
	return notebookPosition.ReplaceAllStringFunc(text, func(m string) string {
		sub := notebookPosition.FindStringSubmatch(m)
		v, ok := notebooks.Load(sub[1])
		if !ok {
			return m
		}
		line, _ := strconv.Atoi(sub[2])
		var at *Cell
		for _, c := range v.([]*Cell) {
			if c.StartLine <= line {
				at = c
			}
		}
		if at == nil {
			return m
		}
		first := at.StartLine
		if strings.HasPrefix(at.Source, "# %%") {
			first++ // the marker is not in the notebook's cell
		}
		return fmt.Sprintf("%s %s, line %d:%s", sub[1], at.Name(), line-first+1, sub[3])
	})
}
