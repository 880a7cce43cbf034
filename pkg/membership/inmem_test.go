package membership

import (
	"context"
	"fmt"
	"slices"
	"testing"
)

// drain returns the events buffered in ch without blocking (the hub delivers
// synchronously), formatted for comparison; "closed" marks a closed channel.
func drain(ch <-chan Event) []string {
	var out []string
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return append(out, "closed")
			}
			s := fmt.Sprintf("%v %s", e.Kind, e.Member.Name)
			if e.Kind == EventLeave {
				s += fmt.Sprintf(" failed=%v", e.Failed)
			}
			if e.Kind == EventUpdate {
				s += fmt.Sprintf(" p=%d", e.Member.Meta.Protocol)
			}
			out = append(out, s)
		default:
			return out
		}
	}
}

func TestInmemHubEvents(t *testing.T) {
	h := NewInmemHub()
	meta := func(r Role) Meta { return Meta{Role: r, Protocol: 1} }
	c := h.Join(Member{Name: "coord", Meta: meta(RoleCoordinator)})
	w2 := h.Join(Member{Name: "w2", Meta: meta(RoleWorker)})
	w1 := h.Join(Member{Name: "w1", Meta: meta(RoleWorker)})

	steps := []struct {
		name   string
		act    func()
		member *InmemMember
		want   []string
	}{
		{"coord sees joins in order", nil, c, []string{"join coord", "join w2", "join w1"}},
		{"late joiner sees self then others by name", nil, w1, []string{"join w1", "join coord", "join w2"}},
		{"update reaches everyone", func() { h.Update("w2", Meta{Role: RoleWorker, Protocol: 2}) }, c, []string{"update w2 p=2"}},
		{"w2 sees its own history", nil, w2, []string{"join w2", "join coord", "join w1", "update w2 p=2"}},
		{"graceful leave", func() { h.Leave("w2") }, c, []string{"leave w2 failed=false"}},
		{"leaver sees its own leave then close", nil, w2, []string{"leave w2 failed=false", "closed"}},
		{"failure", func() { h.Fail("w1") }, c, []string{"leave w1 failed=true"}},
		{"failed member only sees close", nil, w1, []string{"update w2 p=2", "leave w2 failed=false", "closed"}},
		{"rejoin after failure", func() { h.Join(Member{Name: "w1", Meta: meta(RoleWorker)}) }, c, []string{"join w1"}},
	}
	for _, s := range steps {
		if s.act != nil {
			s.act()
		}
		if got := drain(s.member.Events()); !slices.Equal(got, s.want) {
			t.Fatalf("%s: got %q, want %q", s.name, got, s.want)
		}
	}
	if got := memberNames(c.Members()); got != "coord,w1" {
		t.Fatalf("members %q, want coord,w1", got)
	}
	if got := w1.Members(); got != nil {
		t.Fatalf("stale handle of failed w1 sees members %v", got)
	}
	if c.Self().Name != "coord" || c.Self().GossipAddr != "inmem:coord" {
		t.Fatalf("self %+v", c.Self())
	}
	// The stale w1 handle must not remove the rejoined w1.
	if err := w1.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if got := memberNames(c.Members()); got != "coord,w1" {
		t.Fatalf("stale handle removed the new w1: members %q", got)
	}
	if err := w2.Leave(context.Background()); err == nil {
		t.Fatal("Leave of a member that already left succeeded")
	}
	if h.Fail("nobody") || h.Leave("nobody") || h.Update("nobody", Meta{}) {
		t.Fatal("hub reported acting on an unknown member")
	}
}

func TestInmemMemberLeaveAndShutdown(t *testing.T) {
	h := NewInmemHub()
	a := h.Join(Member{Name: "a"})
	b := h.Join(Member{Name: "b"})
	c := h.Join(Member{Name: "c"})
	drain(a.Events())
	if err := b.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := c.Shutdown(); err != nil {
		t.Fatal("second Shutdown:", err)
	}
	want := []string{"leave b failed=false", "leave c failed=true"}
	if got := drain(a.Events()); !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("joining a live name did not panic")
		}
	}()
	h.Join(Member{Name: "a"})
}

func TestEventQueueOverflow(t *testing.T) {
	tests := []struct {
		name   string
		cap    int
		pushes int
		want   []string
	}{
		{"fits", 4, 4, []string{"join n1", "join n2", "join n3", "join n4"}},
		{"one over", 4, 5, []string{"resync ", "join n5"}},
		{"keeps going after resync", 4, 7, []string{"resync ", "join n5", "join n6", "join n7"}},
		{"overflows twice", 4, 9, []string{"resync ", "join n8", "join n9"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := newEventQueue(tc.cap)
			for i := 1; i <= tc.pushes; i++ {
				q.push(Event{Kind: EventJoin, Member: Member{Name: fmt.Sprintf("n%d", i)}})
			}
			q.close()
			q.push(Event{Kind: EventJoin, Member: Member{Name: "after-close"}})
			want := append(slices.Clone(tc.want), "closed")
			if got := drain(q.ch); !slices.Equal(got, want) {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
}
