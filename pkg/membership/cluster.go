package membership

import (
	"context"
	"fmt"
	"sync"
)

// Member is a live member as seen locally.
type Member struct {
	// Name is the unique node name.
	Name string
	// GossipAddr is the host:port other members use for gossip with this member.
	GossipAddr string
	// Meta is what the member advertises.
	Meta Meta
}

// EventKind says what happened to a member.
type EventKind int

const (
	// EventJoin: the member became live (also emitted once for the local node itself).
	EventJoin EventKind = iota + 1
	// EventLeave: the member is gone; Event.Failed says whether it left gracefully.
	EventLeave
	// EventUpdate: the member's metadata or address changed.
	EventUpdate
	// EventResync: events were dropped because the consumer fell behind; the
	// backlog was discarded. Re-read Members(), which reflects everything dropped.
	EventResync
)

// String returns the lower-case name of k.
func (k EventKind) String() string {
	switch k {
	case EventJoin:
		return "join"
	case EventLeave:
		return "leave"
	case EventUpdate:
		return "update"
	case EventResync:
		return "resync"
	default:
		return fmt.Sprintf("EventKind(%d)", int(k))
	}
}

// Event is a change of membership. Member is empty for EventResync.
type Event struct {
	Kind   EventKind
	Member Member
	// Failed is true for an EventLeave when the member was declared dead by failure
	// detection, false when it announced a graceful leave.
	Failed bool
}

// Cluster is what the coordinator and workers use. *Memberlist (gossip over the
// network) and *InmemMember (in-process, deterministic) implement it.
type Cluster interface {
	// Members returns the live members including self, sorted by Name.
	Members() []Member
	// Events returns the event channel. It is buffered and never blocks the
	// producer; on overflow the backlog is replaced by one EventResync. Events are
	// hints, Members() is the truth: after EventResync, or whenever in doubt,
	// re-read Members(). The channel is closed by Shutdown (and Leave).
	Events() <-chan Event
	// Self returns the local member.
	Self() Member
	// Leave announces a graceful leave, then shuts down.
	Leave(ctx context.Context) error
	// Shutdown stops without announcing; the others detect a failure. Idempotent.
	Shutdown() error
	// Rejoin contacts the join addresses once more (see Memberlist.Rejoin).
	Rejoin() error
}

// DefaultEventBuffer is the capacity of the channel returned by Events.
const DefaultEventBuffer = 1024

// eventQueue is a buffered channel with a single logical producer that never
// blocks: when the buffer is full the producer discards the backlog and sends an
// EventResync followed by the new event. Pending events stay readable after close.
type eventQueue struct {
	mu     sync.Mutex
	ch     chan Event
	closed bool
}

func newEventQueue(capacity int) *eventQueue {
	if capacity < 2 {
		capacity = 2
	}
	return &eventQueue{ch: make(chan Event, capacity)}
}

// push delivers e without blocking; it is a no-op after close.
func (q *eventQueue) push(e Event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	select {
	case q.ch <- e:
		return
	default:
	}
	// Full: drop the backlog (only this producer sends, so after draining there
	// is room for the two sends below).
	for drained := false; !drained; {
		select {
		case <-q.ch:
		default:
			drained = true
		}
	}
	q.ch <- Event{Kind: EventResync}
	q.ch <- e
}

// close closes the channel once; later pushes are dropped.
func (q *eventQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
}
