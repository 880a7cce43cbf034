package membership

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// captureHandler records log records so tests can poll for a message.
type captureHandler struct {
	mu    sync.Mutex
	lines []string
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%q", a.Key, a.Value.String())
		return true
	})
	h.mu.Lock()
	h.lines = append(h.lines, b.String())
	h.mu.Unlock()
	return nil
}

func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *captureHandler) WithGroup(string) slog.Handler      { return h }

// find returns the first line containing every part.
func (h *captureHandler) find(parts ...string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range h.lines {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return l, true
		}
	}
	return "", false
}

func (h *captureHandler) dump(t *testing.T, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range h.lines {
		t.Logf("[%s] %s", name, l)
	}
}

// waitFor polls cond every 10 ms until it returns "" or the deadline passes; the
// last non-empty description is the failure message.
func waitFor(t *testing.T, within time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %s", within, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitEvent reads events from ch until match returns true or the deadline passes.
func waitEvent(t *testing.T, ch <-chan Event, within time.Duration, what string, match func(Event) bool) Event {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	var seen []string
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("waiting for %s: event channel closed; seen %v", what, seen)
			}
			if match(e) {
				return e
			}
			seen = append(seen, fmt.Sprintf("%v(%s,failed=%v)", e.Kind, e.Member.Name, e.Failed))
		case <-timer.C:
			t.Fatalf("waiting for %s: none within %v; seen %v", what, within, seen)
		}
	}
}

// memberNames lists names for messages and comparisons.
func memberNames(ms []Member) string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	return strings.Join(names, ",")
}

// testNode starts a Fast node on 127.0.0.1 port 0 with a captured log; mod may
// adjust the config. It is shut down at cleanup (and its log dumped on failure).
func testNode(t *testing.T, name string, role Role, protocol uint32, join []string, mod func(*Config)) (*Memberlist, *captureHandler) {
	t.Helper()
	h := &captureHandler{}
	cfg := Config{
		BindAddr: "127.0.0.1:0",
		Join:     join,
		Meta:     Meta{Role: role, GRPCAddr: "127.0.0.1:9" + fmt.Sprint(len(name)), Protocol: protocol, ID: name},
		Logger:   slog.New(h),
		Fast:     true,
	}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	m, err := Start(ctx, cfg)
	if err != nil {
		h.dump(t, name)
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			h.dump(t, name)
		}
		_ = m.Shutdown()
	})
	return m, h
}
