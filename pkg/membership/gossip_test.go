package membership

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// fastDetect bounds failure detection with the Fast preset, with slack for the
// race detector on a shared 2-core machine.
const fastDetect = 5 * time.Second

// sees returns "" when m's Members() are exactly names (comma-separated, sorted).
func sees(m Cluster, names string) func() string {
	return func() string {
		if got := memberNames(m.Members()); got != names {
			return fmt.Sprintf("%s sees %q, want %q", m.Self().Name, got, names)
		}
		return ""
	}
}

func TestThreeNodes(t *testing.T) {
	a, _ := testNode(t, "a", RoleCoordinator, 1, nil, nil)
	b, _ := testNode(t, "b", RoleWorker, 1, []string{a.GossipAddr()}, nil)
	c, _ := testNode(t, "c", RoleWorker, 1, []string{b.GossipAddr()}, nil) // joins through a worker

	for _, m := range []*Memberlist{a, b, c} {
		waitFor(t, fastDetect, sees(m, "a,b,c"))
	}
	want := map[string]Member{"a": a.Self(), "b": b.Self(), "c": c.Self()}
	for _, m := range []*Memberlist{a, b, c} {
		for _, got := range m.Members() {
			if got != want[got.Name] {
				t.Fatalf("%s sees %+v, want %+v", m.Self().Name, got, want[got.Name])
			}
		}
	}
	if a.Self().Meta.Role != RoleCoordinator || b.Self().Meta.Role != RoleWorker {
		t.Fatalf("roles: a %+v b %+v", a.Self().Meta, b.Self().Meta)
	}

	isJoin := func(name string) func(Event) bool {
		return func(e Event) bool { return e.Kind == EventJoin && e.Member.Name == name }
	}
	waitEvent(t, a.Events(), fastDetect, "a: join a (self)", isJoin("a"))
	waitEvent(t, a.Events(), fastDetect, "a: join b", isJoin("b"))
	if e := waitEvent(t, a.Events(), fastDetect, "a: join c", isJoin("c")); e.Member.Meta != c.Self().Meta {
		t.Fatalf("join event meta %+v, want %+v", e.Member.Meta, c.Self().Meta)
	}

	// A crash: c stops without leaving; a and b must report it as failed.
	start := time.Now()
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*Memberlist{a, b} {
		e := waitEvent(t, m.Events(), fastDetect, "leave c", func(e Event) bool {
			return e.Kind == EventLeave && e.Member.Name == "c"
		})
		if !e.Failed {
			t.Fatalf("%s: crash of c reported as graceful leave", m.Self().Name)
		}
		t.Logf("%s detected the crash of c after %v", m.Self().Name, time.Since(start).Round(time.Millisecond))
	}
	waitFor(t, fastDetect, sees(a, "a,b"))

	// A graceful leave: b announces it; a must report it as not failed.
	start = time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := b.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	e := waitEvent(t, a.Events(), fastDetect, "leave b", func(e Event) bool {
		return e.Kind == EventLeave && e.Member.Name == "b"
	})
	if e.Failed {
		t.Fatal("graceful leave of b reported as failure")
	}
	t.Logf("a saw the graceful leave of b after %v", time.Since(start).Round(time.Millisecond))
	waitFor(t, fastDetect, sees(a, "a"))
	waitClosed(t, b.Events(), fastDetect)
	if err := b.Leave(t.Context()); err == nil {
		t.Fatal("Leave after Leave succeeded")
	}

	// The last node leaves alone: no one to tell, so it returns at once and
	// reports its own graceful leave before the channel closes.
	start = time.Now()
	if err := a.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("lone Leave took %v", d)
	}
	if e := waitEvent(t, a.Events(), fastDetect, "a: own leave", func(e Event) bool {
		return e.Kind == EventLeave && e.Member.Name == "a"
	}); e.Failed {
		t.Fatal("own leave reported as failure")
	}
	waitClosed(t, a.Events(), fastDetect)
}

// waitClosed reads ch until it is closed or the deadline passes.
func waitClosed(t *testing.T, ch <-chan Event, within time.Duration) {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timer.C:
			t.Fatalf("event channel not closed within %v", within)
		}
	}
}

func TestJoinRetriesUntilSeedStarts(t *testing.T) {
	// Reserve a port by starting and stopping a node, then join it before the
	// seed exists: Start must keep retrying until the seed comes up there.
	probe, _ := testNode(t, "probe", RoleWorker, 1, nil, nil)
	addr := probe.GossipAddr()
	if err := probe.Shutdown(); err != nil {
		t.Fatal(err)
	}
	type result struct {
		m   *Memberlist
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		m, err := Start(ctx, Config{BindAddr: "127.0.0.1:0", Join: []string{addr}, Fast: true,
			Meta: Meta{Role: RoleWorker, Protocol: 1, ID: "early-worker"}})
		done <- result{m, err}
	}()
	time.Sleep(300 * time.Millisecond) // let the worker fail a few attempts first
	testNode(t, "seed", RoleCoordinator, 1, nil, func(c *Config) { c.BindAddr = addr })
	r := <-done
	if r.err != nil {
		t.Fatalf("early worker: %v", r.err)
	}
	defer r.m.Shutdown()
	waitFor(t, fastDetect, sees(r.m, "early-worker,seed"))

	// With nothing to join, Start gives up when ctx ends, saying why.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := Start(ctx, Config{BindAddr: "127.0.0.1:0", Join: []string{"127.0.0.1:1"}, Fast: true,
		Meta: Meta{Role: RoleWorker, ID: "lonely"}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a deadline error, got %v", err)
	}
	t.Logf("gave up as expected: %v", err)
}
