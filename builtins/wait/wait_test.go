package wait

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/kumo-dev/kumo/builtins/builtinstest"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/internal/loopback"
)

// Each test waits on a port or server of its own: they run in parallel.
func fixture(t *testing.T) *builtinstest.Fixture { return builtinstest.New(t, Builtins...) }

func TestWaitPortWaitsForTheListener(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	port, err := loopback.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(400 * time.Millisecond)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(func() { l.Close() })
	}()
	start := time.Now()
	f.MustExec(fmt.Sprintf(`wait_port("127.0.0.1", %d, timeout = "10s")`, port))
	if waited := time.Since(start); waited < 400*time.Millisecond {
		t.Errorf("returned after %s, before the port was open", waited)
	}
	st := f.Statuses()
	if len(st) < 2 || !strings.Contains(st[0], fmt.Sprintf("waiting for port %d on 127.0.0.1", port)) || st[len(st)-1] != "" {
		t.Errorf("status lines %q: want what it waits for, then cleared", st)
	}
}

func TestWaitPortGivesUpSayingWhatItGot(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	port, _ := loopback.FreePort() // nothing listens there
	err := f.Exec(fmt.Sprintf(`wait_port("127.0.0.1", %d, timeout = "300ms")`, port))
	for _, want := range []string{fmt.Sprintf("127.0.0.1: port %d", port), "gave up after 300ms", "connection refused"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if starkit.IsInputError(err) {
		t.Error("a port that never opened is not bad input")
	}
	if err := f.Exec(`wait_port("127.0.0.1", 70000)`); !starkit.IsInputError(err) || !strings.Contains(err.Error(), "port 70000 is out of range") {
		t.Errorf("port 70000: %v, want an input error", err)
	}
}

func TestWaitPortStopsOnCtrlC(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	f.Ctx = ctx
	time.AfterFunc(200*time.Millisecond, cancel)
	port, _ := loopback.FreePort()
	start := time.Now()
	err := f.Exec(fmt.Sprintf(`wait_port("127.0.0.1", %d, timeout = "5m")`, port))
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("after Ctrl-C: %v after %s, want an error at once", err, time.Since(start))
	}
}

func TestWaitHTTPPollsUntilTheStatus(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "hello from the hub")
	}))
	defer srv.Close()
	f.MustExec(fmt.Sprintf(`r = wait_http(%q, timeout = "10s")`, srv.URL))
	r := f.Value("r").(*starlarkstruct.Struct)
	status, _ := r.Attr("status")
	body, _ := r.Attr("body")
	if status.String() != "200" || body != starlark.String("hello from the hub") {
		t.Errorf("r = %v", r)
	}
	if calls.Load() != 3 {
		t.Errorf("%d requests, want 3 (two 503s, then 200)", calls.Load())
	}
	if st := strings.Join(f.Statuses(), "\n"); !strings.Contains(st, "(status 503, want 200)") {
		t.Errorf("status lines %q do not say what the last try got", st)
	}
}

func TestWaitHTTPGivesUpOnAnotherStatus(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	err := f.Exec(fmt.Sprintf(`wait_http(%q, status = 200, timeout = "300ms")`, srv.URL+"/hub"))
	if err == nil || !strings.Contains(err.Error(), "status 404, want 200") || !strings.Contains(err.Error(), "/hub") {
		t.Errorf("err = %v", err)
	}
	f.MustExec(fmt.Sprintf(`r = wait_http(%q, status = 404)`, srv.URL))
}
