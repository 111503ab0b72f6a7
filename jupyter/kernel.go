package jupyter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sync"
	"unicode/utf8"

	"github.com/go-zeromq/zmq4"
)

// A Handler is what the kernel does with the requests it gets.
type Handler interface {
	Info() Info
	// Execute runs code; out carries what it prints and shows, and asks
	// for input, until Execute returns. ctx is cancelled by an interrupt.
	Execute(ctx context.Context, req ExecuteRequest, out *Output) ExecuteResult
	// Complete and Inspect take the cursor as a byte offset into code.
	Complete(code string, cursor int) Completion
	Inspect(code string, cursor, detail int) (text string, found bool)
	// IsComplete says whether code is ready to run: "complete",
	// "incomplete" (with the indent of the next line), "invalid".
	IsComplete(code string) (status, indent string)
	// Shutdown is called once, before the kernel exits (or is restarted).
	Shutdown(restart bool)
}

// Info is what kernel_info_reply says of the kernel.
type Info struct {
	Implementation        string
	ImplementationVersion string
	Banner                string
	Language              LanguageInfo
	HelpLinks             []HelpLink
}

// LanguageInfo is the kernel's language, for frontends' highlighting.
type LanguageInfo struct {
	Name           string `json:"name"`
	Version        string `json:"version"`
	Mimetype       string `json:"mimetype"`
	FileExtension  string `json:"file_extension"`
	PygmentsLexer  string `json:"pygments_lexer"`
	CodemirrorMode string `json:"codemirror_mode"`
}

// HelpLink is one entry of the frontend's help menu.
type HelpLink struct {
	Text string `json:"text"`
	URL  string `json:"url"`
}

// ExecuteRequest is an execute_request's content.
type ExecuteRequest struct {
	Code         string         `json:"code"`
	Silent       bool           `json:"silent"`
	StoreHistory bool           `json:"store_history"`
	AllowStdin   bool           `json:"allow_stdin"`
	StopOnError  bool           `json:"stop_on_error"`
	Metadata     map[string]any `json:"-"` // the request's metadata (JupyterLab's cellId)
	Count        int            `json:"-"` // the execution count it gets
}

// ExecuteResult is how an execution ended.
type ExecuteResult struct {
	Err *ErrorValue
	// Data, if set, is the value of the code as a MIME bundle
	// (execute_result).
	Data map[string]any
	// Metadata goes into the reply's metadata.
	Metadata map[string]any
	// Payload goes into the reply: {"source": "ask_exit"} asks a console
	// to leave.
	Payload []map[string]any
}

// ErrorValue is an error as Jupyter shows it.
type ErrorValue struct {
	Name      string   `json:"ename"`
	Value     string   `json:"evalue"`
	Traceback []string `json:"traceback"`
}

// Completion is a complete_reply's matches, replacing code[Start:End]
// (byte offsets).
type Completion struct {
	Matches    []string
	Start, End int
}

// Kernel serves one connection file's sockets.
type Kernel struct {
	conn    *Connection
	handler Handler
	signer  signer
	session string
	// Log gets what the kernel cannot tell a frontend (forged messages).
	Log io.Writer

	shell, control, stdin, iopub, hb     zmq4.Socket
	iopubMu, shellMu, controlMu, stdinMu sync.Mutex

	mu      sync.Mutex
	count   int
	history []historyEntry     // this session's executions
	cancel  context.CancelFunc // the running execution's
	inputs  chan *Message      // input_reply messages
	done    chan struct{}
	closing sync.Once
	restart bool
}

// NewKernel prepares a kernel for the connection; Serve runs it.
func NewKernel(conn *Connection, h Handler) *Kernel {
	return &Kernel{conn: conn, handler: h, signer: signer{key: []byte(conn.Key)}, session: newID(),
		inputs: make(chan *Message, 1), done: make(chan struct{}), Log: io.Discard}
}

// Serve binds the sockets and answers requests until a shutdown request,
// Stop, or ctx's end.
func (k *Kernel) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	k.shell, k.control, k.stdin = zmq4.NewRouter(ctx), zmq4.NewRouter(ctx), zmq4.NewRouter(ctx)
	k.iopub, k.hb = zmq4.NewPub(ctx), zmq4.NewRep(ctx)
	for _, s := range []struct {
		sock zmq4.Socket
		port int
		name string
	}{{k.shell, k.conn.ShellPort, "shell"}, {k.control, k.conn.ControlPort, "control"}, {k.stdin, k.conn.StdinPort, "stdin"},
		{k.iopub, k.conn.IOPubPort, "iopub"}, {k.hb, k.conn.HBPort, "heartbeat"}} {
		if err := s.sock.Listen(k.conn.endpoint(s.port)); err != nil {
			k.closeSockets()
			return fmt.Errorf("kernel %s socket on %s: %v", s.name, k.conn.endpoint(s.port), err)
		}
	}
	defer k.closeSockets()
	k.publish(nil, "status", map[string]any{"execution_state": "starting"})
	go k.heartbeat()
	go k.serveStdin()
	go k.serve(k.control, &k.controlMu)
	go k.serve(k.shell, &k.shellMu)
	select {
	case <-ctx.Done():
	case <-k.done:
	}
	k.mu.Lock()
	restart := k.restart
	k.mu.Unlock()
	k.handler.Shutdown(restart)
	return nil
}

// Stop ends Serve, as a shutdown request would (the parent died, say).
func (k *Kernel) Stop() {
	k.interrupt()
	k.closing.Do(func() { close(k.done) })
}

func (k *Kernel) closeSockets() {
	for _, s := range []zmq4.Socket{k.shell, k.control, k.stdin, k.iopub, k.hb} {
		if s != nil {
			s.Close()
		}
	}
}

func (k *Kernel) heartbeat() {
	for {
		msg, err := k.hb.Recv()
		if err != nil {
			return
		}
		if err := k.hb.Send(msg); err != nil {
			return
		}
	}
}

// serve reads requests from a ROUTER socket and answers each in turn.
// Shell and control are served apart, so that an interrupt reaches the
// kernel while the shell runs an execution.
func (k *Kernel) serve(sock zmq4.Socket, mu *sync.Mutex) {
	for {
		raw, err := sock.Recv()
		if err != nil {
			return
		}
		msg, err := k.signer.decode(raw.Frames)
		if err != nil {
			fmt.Fprintf(k.Log, "kumo kernel: dropped a message: %v\n", err)
			continue
		}
		k.handle(sock, mu, msg)
	}
}

func (k *Kernel) serveStdin() {
	for {
		raw, err := k.stdin.Recv()
		if err != nil {
			return
		}
		msg, err := k.signer.decode(raw.Frames)
		if err != nil {
			fmt.Fprintf(k.Log, "kumo kernel: dropped a message: %v\n", err)
			continue
		}
		if msg.Type() == "input_reply" {
			select {
			case k.inputs <- msg:
			default: // nobody asked
			}
		}
	}
}

func (k *Kernel) handle(sock zmq4.Socket, mu *sync.Mutex, msg *Message) {
	reply := func(typ string, content any) { k.send(sock, mu, msg, typ, content, nil) }
	k.publish(msg, "status", map[string]any{"execution_state": "busy"})
	defer k.publish(msg, "status", map[string]any{"execution_state": "idle"})
	switch msg.Type() {
	case "kernel_info_request":
		info := k.handler.Info()
		links := info.HelpLinks
		if links == nil {
			links = []HelpLink{}
		}
		reply("kernel_info_reply", map[string]any{
			"status": "ok", "protocol_version": ProtocolVersion, "implementation": info.Implementation,
			"implementation_version": info.ImplementationVersion, "language_info": info.Language,
			"banner": info.Banner, "help_links": links, "debugger": false,
		})
	case "execute_request":
		k.execute(sock, mu, msg)
	case "complete_request":
		var req struct {
			Code   string `json:"code"`
			Cursor int    `json:"cursor_pos"`
		}
		json.Unmarshal(msg.Content, &req)
		at := byteOffset(req.Code, req.Cursor)
		c := k.handler.Complete(req.Code, at)
		if c.Matches == nil {
			c.Matches = []string{}
		}
		reply("complete_reply", map[string]any{"status": "ok", "matches": c.Matches,
			"cursor_start": runeOffset(req.Code, c.Start), "cursor_end": runeOffset(req.Code, c.End), "metadata": map[string]any{}})
	case "inspect_request":
		var req struct {
			Code   string `json:"code"`
			Cursor int    `json:"cursor_pos"`
			Detail int    `json:"detail_level"`
		}
		json.Unmarshal(msg.Content, &req)
		text, found := k.handler.Inspect(req.Code, byteOffset(req.Code, req.Cursor), req.Detail)
		data := map[string]any{}
		if found {
			data["text/plain"] = text
		}
		reply("inspect_reply", map[string]any{"status": "ok", "found": found, "data": data, "metadata": map[string]any{}})
	case "is_complete_request":
		var req struct {
			Code string `json:"code"`
		}
		json.Unmarshal(msg.Content, &req)
		status, indent := k.handler.IsComplete(req.Code)
		content := map[string]any{"status": status}
		if status == "incomplete" {
			content["indent"] = indent
		}
		reply("is_complete_reply", content)
	case "history_request":
		reply("history_reply", map[string]any{"status": "ok", "history": k.historyFor(msg.Content)})
	case "comm_info_request":
		reply("comm_info_reply", map[string]any{"status": "ok", "comms": map[string]any{}})
	case "comm_open":
		// kumo has no comm targets: close it, as ipykernel does for an unknown target.
		var req struct {
			ID string `json:"comm_id"`
		}
		json.Unmarshal(msg.Content, &req)
		k.publish(msg, "comm_close", map[string]any{"comm_id": req.ID, "data": map[string]any{}})
	case "interrupt_request":
		k.interrupt()
		reply("interrupt_reply", map[string]any{"status": "ok"})
	case "shutdown_request":
		var req struct {
			Restart bool `json:"restart"`
		}
		json.Unmarshal(msg.Content, &req)
		k.mu.Lock()
		k.restart = req.Restart
		k.mu.Unlock()
		reply("shutdown_reply", map[string]any{"status": "ok", "restart": req.Restart})
		k.Stop()
	default:
		fmt.Fprintf(k.Log, "kumo kernel: %s is not a request kumo answers\n", msg.Type())
	}
}

func (k *Kernel) execute(sock zmq4.Socket, mu *sync.Mutex, msg *Message) {
	var req ExecuteRequest
	if err := json.Unmarshal(msg.Content, &req); err != nil {
		k.send(sock, mu, msg, "execute_reply", map[string]any{"status": "error", "ename": "BadRequest", "evalue": err.Error(), "traceback": []string{}, "execution_count": k.count}, nil)
		return
	}
	req.Metadata = msg.Metadata
	k.mu.Lock()
	if !req.Silent && req.StoreHistory {
		k.count++
	}
	req.Count = k.count
	ctx, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		k.cancel = nil
		k.mu.Unlock()
		cancel()
	}()
	if !req.Silent {
		k.publish(msg, "execute_input", map[string]any{"code": req.Code, "execution_count": req.Count})
	}
	out := &Output{k: k, parent: msg, silent: req.Silent, allowStdin: req.AllowStdin}
	res := k.handler.Execute(ctx, req, out)
	payload := res.Payload
	if payload == nil {
		payload = []map[string]any{}
	}
	content := map[string]any{"status": "ok", "execution_count": req.Count, "user_expressions": map[string]any{}, "payload": payload}
	if res.Err != nil {
		tb := res.Err.Traceback
		if tb == nil {
			tb = []string{}
		}
		content = map[string]any{"status": "error", "execution_count": req.Count, "ename": res.Err.Name, "evalue": res.Err.Value, "traceback": tb}
		if !req.Silent {
			k.publish(msg, "error", map[string]any{"ename": res.Err.Name, "evalue": res.Err.Value, "traceback": tb})
		}
	} else if res.Data != nil && !req.Silent {
		k.publish(msg, "execute_result", map[string]any{"execution_count": req.Count, "data": res.Data, "metadata": map[string]any{}})
	}
	if req.StoreHistory && !req.Silent {
		var output any
		if res.Data != nil {
			output = res.Data["text/plain"]
		}
		k.mu.Lock()
		k.history = append(k.history, historyEntry{count: req.Count, code: req.Code, output: output})
		k.mu.Unlock()
	}
	k.send(sock, mu, msg, "execute_reply", content, res.Metadata)
}

// interrupt cancels the running execution, if any.
func (k *Kernel) interrupt() {
	k.mu.Lock()
	if k.cancel != nil {
		k.cancel()
	}
	k.mu.Unlock()
}

// Interrupt is an interrupt request from outside the protocol (SIGINT).
func (k *Kernel) Interrupt() { k.interrupt() }

// send replies to msg on a ROUTER socket, to the identities it came from.
func (k *Kernel) send(sock zmq4.Socket, mu *sync.Mutex, parent *Message, typ string, content any, meta map[string]any) {
	m, err := k.message(parent, typ, content)
	if err != nil {
		fmt.Fprintf(k.Log, "kumo kernel: %s: %v\n", typ, err)
		return
	}
	m.Identities, m.Metadata = parent.Identities, meta
	k.write(sock, mu, m)
}

// publish sends a message on iopub, with parent as its parent (nil: none).
func (k *Kernel) publish(parent *Message, typ string, content any) {
	m, err := k.message(parent, typ, content)
	if err != nil {
		fmt.Fprintf(k.Log, "kumo kernel: %s: %v\n", typ, err)
		return
	}
	m.Identities = [][]byte{[]byte("kernel." + typ)}
	k.write(k.iopub, &k.iopubMu, m)
}

func (k *Kernel) message(parent *Message, typ string, content any) (*Message, error) {
	body, err := json.Marshal(content)
	if err != nil {
		return nil, err
	}
	m := &Message{Header: Header{MsgID: newID(), Session: k.session, Username: "kumo", Date: now(), MsgType: typ, Version: ProtocolVersion}, Content: body}
	if parent != nil {
		m.ParentHeader, _ = json.Marshal(parent.Header)
	}
	return m, nil
}

func (k *Kernel) write(sock zmq4.Socket, mu *sync.Mutex, m *Message) {
	frames, err := k.signer.encode(m)
	if err != nil {
		fmt.Fprintf(k.Log, "kumo kernel: %v\n", err)
		return
	}
	mu.Lock()
	defer mu.Unlock()
	if err := sock.Send(zmq4.NewMsgFrom(frames...)); err != nil {
		fmt.Fprintf(k.Log, "kumo kernel: sending %s: %v\n", m.Header.MsgType, err)
	}
}

// Output is where an execution's output goes: iopub messages whose
// parent is its request.
type Output struct {
	k          *Kernel
	parent     *Message
	silent     bool
	allowStdin bool
}

// Stream prints text on "stdout" or "stderr".
func (o *Output) Stream(name, text string) {
	if o.silent || text == "" {
		return
	}
	o.k.publish(o.parent, "stream", map[string]any{"name": name, "text": text})
}

// Display shows a MIME bundle; with an id, UpdateDisplay replaces it later.
func (o *Output) Display(data map[string]any, id string) {
	o.display("display_data", data, id)
}

// UpdateDisplay replaces what Display showed under id.
func (o *Output) UpdateDisplay(data map[string]any, id string) {
	o.display("update_display_data", data, id)
}

func (o *Output) display(typ string, data map[string]any, id string) {
	if o.silent {
		return
	}
	content := map[string]any{"data": data, "metadata": map[string]any{}}
	if id != "" {
		content["transient"] = map[string]any{"display_id": id}
	}
	o.k.publish(o.parent, typ, content)
}

// ErrNoStdin is Input where the frontend does not take input.
var ErrNoStdin = errors.New("the frontend does not take input (allow_stdin is false)")

// Input asks the frontend for a line (password: without showing it),
// waiting for the answer or ctx's end.
func (o *Output) Input(ctx context.Context, prompt string, password bool) (string, error) {
	if !o.allowStdin {
		return "", ErrNoStdin
	}
	select { // an answer nobody waits for any more
	case <-o.k.inputs:
	default:
	}
	o.k.send(o.k.stdin, &o.k.stdinMu, o.parent, "input_request", map[string]any{"prompt": prompt, "password": password}, nil)
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case <-o.k.done:
		return "", errors.New("the kernel is shutting down")
	case m := <-o.k.inputs:
		var reply struct {
			Value string `json:"value"`
		}
		json.Unmarshal(m.Content, &reply)
		return reply.Value, nil
	}
}

// byteOffset is the byte offset of the n-th code point of s.
func byteOffset(s string, n int) int {
	i := 0
	for n > 0 && i < len(s) {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n--
	}
	return i
}

// runeOffset is the code point offset of byte offset b of s.
func runeOffset(s string, b int) int {
	if b > len(s) {
		b = len(s)
	}
	return utf8.RuneCountInString(s[:b])
}

// historyEntry is one execution of this session, for history requests.
type historyEntry struct {
	count  int
	code   string
	output any // its execute_result's text, or nil
}

// historySession is this kernel's session number in history replies:
// it keeps no history across sessions.
const historySession = 1

// historyFor answers a history request: the last n executions (tail),
// those of a range of counts, or those whose code matches a glob.
func (k *Kernel) historyFor(content []byte) []any {
	var req struct {
		Output  bool   `json:"output"`
		Type    string `json:"hist_access_type"`
		N       int    `json:"n"`
		Session int    `json:"session"`
		Start   int    `json:"start"`
		Stop    int    `json:"stop"`
		Pattern string `json:"pattern"`
		Unique  bool   `json:"unique"`
	}
	json.Unmarshal(content, &req)
	k.mu.Lock()
	all := append([]historyEntry{}, k.history...)
	k.mu.Unlock()
	var picked []historyEntry
	switch req.Type {
	case "tail":
		picked = all[max(0, len(all)-req.N):]
	case "range":
		if req.Session == historySession || req.Session <= 0 {
			for _, h := range all {
				if h.count >= req.Start && (req.Stop <= 0 || h.count < req.Stop) {
					picked = append(picked, h)
				}
			}
		}
	case "search":
		seen := map[string]bool{}
		for i := len(all) - 1; i >= 0; i-- {
			h := all[i]
			if ok, _ := path.Match(req.Pattern, h.code); !ok || (req.Unique && seen[h.code]) {
				continue
			}
			seen[h.code] = true
			picked = append([]historyEntry{h}, picked...)
		}
		if req.N > 0 && len(picked) > req.N {
			picked = picked[len(picked)-req.N:]
		}
	}
	out := []any{}
	for _, h := range picked {
		var entry any = h.code
		if req.Output {
			entry = []any{h.code, h.output}
		}
		out = append(out, []any{historySession, h.count, entry})
	}
	return out
}
