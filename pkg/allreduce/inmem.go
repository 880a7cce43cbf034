package allreduce

import (
	"context"
	"fmt"
)

// inmemDepth is the number of frames a link buffers, like a small socket buffer.
const inmemDepth = 4

// inmemLink is the one-way channel between a rank and its right neighbour, with
// a free list so that frames are recycled instead of allocated.
type inmemLink struct {
	frames chan *Frame
	free   chan *Frame
}

// InmemTransport is an in-memory Transport, the test twin of the gRPC transport.
// Build connected ones with NewInmemRing. After a call fails, frames of that call
// may remain queued: build a new ring rather than reusing it.
type InmemTransport struct {
	out, in *inmemLink
	// last is the frame handed out by the previous Recv, recycled on the next.
	last *Frame
}

// NewInmemRing returns n connected in-memory transports: element r sends to
// element (r+1) mod n and receives from element (r-1) mod n. n <= 0 returns nil.
func NewInmemRing(n int) []Transport {
	if n <= 0 {
		return nil
	}
	links := make([]*inmemLink, n)
	for i := range links {
		links[i] = &inmemLink{frames: make(chan *Frame, inmemDepth), free: make(chan *Frame, inmemDepth+2)}
	}
	ts := make([]Transport, n)
	for r := range ts {
		ts[r] = &InmemTransport{out: links[r], in: links[(r+n-1)%n]}
	}
	return ts
}

// Send copies f into a recycled frame and queues it for the right neighbour.
func (t *InmemTransport) Send(ctx context.Context, f *Frame) error {
	var c *Frame
	select {
	case c = <-t.out.free:
	default:
		c = new(Frame)
	}
	data := append(c.Data[:0], f.Data...)
	*c = *f
	c.Data = data
	select {
	case t.out.frames <- c:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("inmem send: %w", context.Cause(ctx))
	}
}

// Recv returns the next frame from the left neighbour; it is valid until the next Recv.
func (t *InmemTransport) Recv(ctx context.Context) (*Frame, error) {
	if t.last != nil {
		select {
		case t.in.free <- t.last:
		default:
		}
		t.last = nil
	}
	select {
	case f := <-t.in.frames:
		t.last = f
		return f, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("inmem receive: %w", context.Cause(ctx))
	}
}
