package membership

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// InmemHub is an in-process stand-in for a gossip cluster, like hashicorp/raft's
// InmemTransport: members join a hub, and joins, updates, graceful leaves and
// failures are delivered to every live member synchronously, in the order the hub
// methods are called, without sockets or timers. Each member's events are in its
// buffered channel when the hub method returns.
type InmemHub struct {
	mu   sync.Mutex
	live map[string]*InmemMember
}

// NewInmemHub returns an empty hub.
func NewInmemHub() *InmemHub {
	return &InmemHub{live: make(map[string]*InmemMember)}
}

// InmemMember is one member of an InmemHub; it implements Cluster.
type InmemMember struct {
	hub    *InmemHub
	self   Member
	events *eventQueue
	// gone is set (under hub.mu) once the member left, failed or shut down.
	gone bool
}

var _ Cluster = (*InmemMember)(nil)

// Join adds m to the hub. The new member receives an EventJoin for itself, then
// one for every live member in name order; every other live member receives an
// EventJoin for m. An empty GossipAddr becomes "inmem:"+Name. Joining a name that
// is live panics (a test bug); a name may rejoin after Leave or Fail.
func (h *InmemHub) Join(m Member) *InmemMember {
	if m.GossipAddr == "" {
		m.GossipAddr = "inmem:" + m.Name
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.live[m.Name]; ok {
		panic(fmt.Sprintf("membership: InmemHub.Join: member %q is already live", m.Name))
	}
	im := &InmemMember{hub: h, self: m, events: newEventQueue(DefaultEventBuffer)}
	im.events.push(Event{Kind: EventJoin, Member: m})
	for _, other := range h.sortedLocked() {
		im.events.push(Event{Kind: EventJoin, Member: other.self})
		other.events.push(Event{Kind: EventJoin, Member: m})
	}
	h.live[m.Name] = im
	return im
}

// Update changes a live member's meta; every live member (itself included)
// receives an EventUpdate. It reports whether the member was live.
func (h *InmemHub) Update(name string, meta Meta) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	im, ok := h.live[name]
	if !ok {
		return false
	}
	im.self.Meta = meta
	for _, other := range h.sortedLocked() {
		other.events.push(Event{Kind: EventUpdate, Member: im.self})
	}
	return true
}

// Fail simulates a crash detected by everyone: every other live member receives an
// EventLeave with Failed=true; the failed member's channel is closed. It reports
// whether the member was live.
func (h *InmemHub) Fail(name string) bool {
	return h.remove(name, nil, true)
}

// Leave simulates a graceful leave: every live member, the leaver included,
// receives an EventLeave with Failed=false; then the leaver's channel is closed.
// It reports whether the member was live.
func (h *InmemHub) Leave(name string) bool {
	return h.remove(name, nil, false)
}

// remove takes the live member name out of the hub; with a non-nil handle, only
// if that handle is the live one (not a later member that rejoined by that name).
func (h *InmemHub) remove(name string, handle *InmemMember, failed bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	im, ok := h.live[name]
	if !ok || (handle != nil && im != handle) {
		return false
	}
	delete(h.live, name)
	im.gone = true
	ev := Event{Kind: EventLeave, Member: im.self, Failed: failed}
	if !failed {
		im.events.push(ev)
	}
	im.events.close()
	for _, other := range h.sortedLocked() {
		other.events.push(ev)
	}
	return true
}

// sortedLocked returns the live members in name order; h.mu must be held.
func (h *InmemHub) sortedLocked() []*InmemMember {
	out := make([]*InmemMember, 0, len(h.live))
	for _, im := range h.live {
		out = append(out, im)
	}
	slices.SortFunc(out, func(a, b *InmemMember) int { return strings.Compare(a.self.Name, b.self.Name) })
	return out
}

// Members returns the hub's live members sorted by Name, or nil once this member
// is gone.
func (m *InmemMember) Members() []Member {
	h := m.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if m.gone {
		return nil
	}
	all := h.sortedLocked()
	out := make([]Member, len(all))
	for i, im := range all {
		out[i] = im.self
	}
	return out
}

// Events returns the member's event channel (see Cluster.Events).
func (m *InmemMember) Events() <-chan Event { return m.events.ch }

// Self returns the member as it joined (with the latest Update).
func (m *InmemMember) Self() Member {
	m.hub.mu.Lock()
	defer m.hub.mu.Unlock()
	return m.self
}

// Leave leaves the hub gracefully (see InmemHub.Leave).
func (m *InmemMember) Leave(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("membership: inmem leave %q: %w", m.self.Name, err)
	}
	if !m.hub.remove(m.self.Name, m, false) {
		return errors.New("membership: inmem leave: member already gone")
	}
	return nil
}

// Shutdown drops out without a leave, which the others see as a failure. It is
// safe to call more than once.
func (m *InmemMember) Shutdown() error {
	m.hub.remove(m.self.Name, m, true)
	return nil
}

// Rejoin implements Cluster: an in-memory member never loses touch with its
// hub.
func (m *InmemMember) Rejoin() error { return nil }

// Start joins the hub as cfg describes (its Name and Meta; addresses, keys
// and timings do not apply). It has the signature of membership.Start, so a
// coordinator or worker built for gossip runs on the hub unchanged.
func (h *InmemHub) Start(_ context.Context, cfg Config) (Cluster, error) {
	return h.Join(Member{Name: cfg.Name, Meta: cfg.Meta}), nil
}
