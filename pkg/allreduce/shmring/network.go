package shmring

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
)

// RingNetwork is the ring transport factory, the same method set as
// worker.RingNetwork (repeated here so that this package does not import
// the worker): the Network's fallback, and what a Network is.
type RingNetwork interface {
	Connect(ctx context.Context, leftAddr, rightAddr string, generation uint64) (allreduce.Transport, error)
}

// Network is a RingNetwork that uses shared memory towards the neighbours
// that have a live segment in the same directory, and the fallback for the
// others, per direction (see the package documentation).
type Network struct {
	dir      string
	self     *Segment
	fallback RingNetwork

	mu  sync.Mutex
	out *peer // the right neighbour's segment, mapped, as of the last Connect
}

var _ RingNetwork = (*Network)(nil)

// NewNetwork returns a Network over the segments in dir. self is this
// worker's receive segment, from Listen; with nil (Listen failed) every
// Connect goes to fallback, since a direction uses shared memory only between
// two workers that both have a segment. fallback serves the directions
// shared memory does not: the worker's gRPC ring.
func NewNetwork(dir string, self *Segment, fallback RingNetwork) *Network {
	return &Network{dir: dir, self: self, fallback: fallback}
}

// Connect returns the Transport of generation generation between the
// neighbours advertised as leftAddr and rightAddr. If the Network has its
// own segment, it sends through shared memory iff rightAddr has a live
// segment of this layout in the directory that this process can map, and
// receives through shared memory iff leftAddr has a live segment (the left
// neighbour, applying the same rule, then sends into ours). The fallback's
// Connect is called only when a direction needs it. Do not call Connect while
// an all-reduce runs on the previous Transport.
func (n *Network) Connect(ctx context.Context, leftAddr, rightAddr string, generation uint64) (allreduce.Transport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("shmring: connect: %w", context.Cause(ctx))
	}
	t := &Transport{gen: generation}
	// A direction uses shared memory iff both of its ends have a live
	// segment: each end can tell from the two files alone.
	// If our file was removed behind our back (a cleanup of /dev/shm,
	// systemd's RemoveIPC), neighbours cannot see it: use the fallback
	// both ways, as they will towards us.
	shared := n.self != nil && n.self.mem != nil && n.self.inPlace()
	if shared {
		t.out = n.rightPeer(rightAddr)
	}
	if shared && n.live(leftAddr) {
		t.in = n.self
		n.self.begin(generation)
	}
	if t.out == nil || t.in == nil {
		if n.fallback == nil {
			return nil, fmt.Errorf("shmring: connect %s -> self -> %s: no shared memory segment (send %v, receive %v) and no fallback", leftAddr, rightAddr, t.out != nil, t.in != nil)
		}
		fb, err := n.fallback.Connect(ctx, leftAddr, rightAddr, generation)
		if err != nil {
			return nil, err
		}
		if t.out == nil && t.in == nil {
			return fb, nil
		}
		t.fb = fb
	}
	return t, nil
}

// rightPeer returns the mapped segment of rightAddr, reusing the previous
// mapping while the file and its owner are the same, or nil.
func (n *Network) rightPeer(addr string) *peer {
	path := SegmentPath(n.dir, addr)
	if o := n.out; o != nil {
		if o.path == path && o.same() {
			return o
		}
		o.close()
		n.out = nil
	}
	p, err := openPeer(path, addr)
	if err != nil {
		return nil
	}
	if err := p.mapMem(); err != nil {
		p.close()
		return nil
	}
	n.out = p
	return p
}

// live reports whether addr has a live segment in the directory.
func (n *Network) live(addr string) bool {
	p, err := openPeer(SegmentPath(n.dir, addr), addr)
	if err != nil {
		return false
	}
	p.close()
	return true
}

// Close unmaps the right neighbour's segment. It closes neither the
// Network's own Segment nor the fallback.
func (n *Network) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.out != nil {
		n.out.close()
		n.out = nil
	}
	return nil
}

// Transport is the allreduce.Transport of one generation of a Network: each
// direction goes through shared memory or through the fallback's Transport.
type Transport struct {
	gen   uint64
	out   *peer               // nil: send through fb
	in    *Segment            // nil: receive through fb
	fb    allreduce.Transport // nil when both directions use shared memory
	frame allreduce.Frame
	parts [1][]byte
}

var _ allreduce.Transport = (*Transport)(nil)

// SendsShared and ReceivesShared report which directions use shared memory.
func (t *Transport) SendsShared() bool    { return t.out != nil }
func (t *Transport) ReceivesShared() bool { return t.in != nil }

// Send copies f into the right neighbour's segment (one copy, from f's
// payload into the ring), waiting while the ring is full, or sends it through
// the fallback.
func (t *Transport) Send(ctx context.Context, f *allreduce.Frame) error {
	if t.out == nil {
		return t.fb.Send(ctx, f)
	}
	return t.out.send(ctx, f)
}

// Recv returns the next frame from the left neighbour of this generation or
// a newer one, dropping older ones. Through shared memory the payload is not
// copied: Data (and Parts, when the record wraps around the ring's end) points
// into the segment, and the record is released by the next Recv.
func (t *Transport) Recv(ctx context.Context) (*allreduce.Frame, error) {
	if t.in == nil {
		return t.fb.Recv(ctx)
	}
	if t.in.mem == nil {
		return nil, errors.New("shmring: receive: segment closed")
	}
	if err := t.in.recv(ctx, t.gen, &t.frame, &t.parts); err != nil {
		return nil, err
	}
	return &t.frame, nil
}
