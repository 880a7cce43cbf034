package shmring

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
)

// Polling schedule of a side that finds nothing to do (no record to read, no
// room to write): retry at once spinRounds times, then yield the processor
// yieldRounds times (the rank's other goroutine, or another process, runs),
// then sleep, from minSleep doubling to maxSleep, with the thread's timer
// slack lowered to timerSlack (with the kernel's default 50 µs, nanosleep(5µs)
// takes about 60 µs here). time.Sleep is not used: the Go runtime stretches
// sub-millisecond sleeps of an idle process to about 1 ms (measured: 50 µs ->
// 1.0 ms).
const (
	spinRounds  = 128
	yieldRounds = 64
	minSleep    = 2 * time.Microsecond
	maxSleep    = 64 * time.Microsecond
	timerSlack  = time.Microsecond
)

// ErrCorrupt is wrapped by the error a Transport returns when a segment's
// counters or a record's framing are inconsistent (a bug or a foreign writer).
var ErrCorrupt = errors.New("shmring: corrupt segment")

type backoff struct {
	n     int
	sleep time.Duration
}

// wait waits a little, per the polling schedule, or returns ctx's cause.
func (b *backoff) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	default:
	}
	b.n++
	switch {
	case b.n <= spinRounds:
	case b.n <= spinRounds+yieldRounds:
		runtime.Gosched()
	default:
		if b.sleep == 0 {
			b.sleep = minSleep
			// The kernel stretches a sleep by the thread's timer slack,
			// 50 µs by default, which would dwarf the sleeps; lower it for
			// this thread (one more system call per wait, not per poll).
			_ = unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(timerSlack), 0, 0, 0)
		}
		ts := unix.NsecToTimespec(int64(b.sleep))
		_ = unix.Nanosleep(&ts, nil)
		b.sleep = min(2*b.sleep, maxSleep)
	}
	return nil
}

func roundUp(n, a uint64) uint64 { return (n + a - 1) &^ (a - 1) }

// send writes f into p's ring: reserve a record by advancing head with a
// compare-and-swap once the consumer has released enough room, fill in the
// header and copy the payload, then publish the record by storing its commit
// word. The reservation makes concurrent producers (a stale left neighbour
// still sending frames of an aborted generation) write disjoint records.
func (p *peer) send(ctx context.Context, f *allreduce.Frame) error {
	n := uint64(f.PayloadLen())
	stride := recHeader + roundUp(n, recAlignment)
	if stride > p.capacity {
		return fmt.Errorf("shmring: send to %s: a frame of %d bytes does not fit a ring of %d", p.path, n, p.capacity)
	}
	var bo backoff
	var h uint64
	for {
		h = atomic.LoadUint64(p.head)
		if h >= p.tailSeen && h-p.tailSeen+stride <= p.capacity {
			if atomic.CompareAndSwapUint64(p.head, h, h+stride) {
				break
			}
			continue
		}
		t := atomic.LoadUint64(p.tail)
		if t != p.tailSeen {
			p.tailSeen = t
			continue
		}
		if t <= h && h-t > p.capacity {
			return fmt.Errorf("shmring: send to %s: head %d, tail %d: %w", p.path, h, t, ErrCorrupt)
		}
		if err := bo.wait(ctx); err != nil {
			return fmt.Errorf("shmring: send to %s: %w", p.path, err)
		}
	}
	pos := h % p.capacity
	rec := p.data[pos : pos+recHeader]
	*u64(rec, recStride) = stride
	*u64(rec, recGen) = f.Generation
	*u64(rec, recStep) = f.Step
	*u64(rec, recOffset) = f.Offset
	*u32(rec, recRound) = f.Round
	*u32(rec, recSeq) = f.Seq
	*u32(rec, recLen) = uint32(n)
	at := (pos + recHeader) % p.capacity
	at = p.copyIn(at, f.Data)
	for _, part := range f.Parts {
		at = p.copyIn(at, part)
	}
	if testHookPublish != nil {
		testHookPublish(rec)
	}
	atomic.StoreUint64(u64(rec, recCommit), h+1)
	return nil
}

// copyIn copies src into the ring at position at (< capacity), wrapping
// around its end, and returns the position after it.
func (p *peer) copyIn(at uint64, src []byte) uint64 {
	k := uint64(copy(p.data[at:], src))
	if k < uint64(len(src)) {
		k2 := uint64(copy(p.data, src[k:]))
		return k2
	}
	return (at + k) % p.capacity
}

// testHookPublish, when set (by tests), sees every record just before it is
// published.
var testHookPublish func(rec []byte)

// begin prepares the segment for a Transport of generation gen: the frame
// the previous Transport still held is released (it was consumed), unless it
// is of a newer generation than that Transport's and not older than gen (an
// all-reduce of an older generation rejected it: it is delivered again), and
// the committed records of older generations are dropped. Consecutive steps
// of one generation each get a Transport of the same generation.
func (s *Segment) begin(gen uint64) {
	if s.held {
		if s.heldGen > s.recvGen && s.heldGen >= gen {
			s.held = false
		} else {
			s.release()
		}
	}
	s.recvGen = gen
	for {
		if s.headSeen <= s.pos {
			s.headSeen = atomic.LoadUint64(s.head)
			if s.headSeen <= s.pos {
				return
			}
		}
		rec, ok := s.committed()
		if !ok || *u64(rec, recGen) >= gen {
			return
		}
		stride := *u64(rec, recStride)
		if stride < recHeader || stride%recAlignment != 0 || stride > s.headSeen-s.pos {
			return // Recv reports it
		}
		s.pos += stride
		atomic.StoreUint64(s.tail, s.pos)
	}
}

// committed returns the record at the consumer position if it is published.
func (s *Segment) committed() ([]byte, bool) {
	pos := s.pos % s.capacity
	rec := s.data[pos : pos+recHeader]
	return rec, atomic.LoadUint64(u64(rec, recCommit)) == s.pos+1
}

// release hands the held frame's record back to the producers.
func (s *Segment) release() {
	s.pos = s.heldEnd
	s.held = false
	atomic.StoreUint64(s.tail, s.pos)
}

// recv returns, in *fr, the next record of generation gen or newer, dropping
// older ones; the payload stays in the ring (fr.Data, and fr.Parts =
// parts[:1] when it wraps around the ring's end) until the next recv.
func (s *Segment) recv(ctx context.Context, gen uint64, fr *allreduce.Frame, parts *[1][]byte) error {
	if s.held {
		s.release()
	}
	var bo backoff
	for {
		if s.headSeen <= s.pos {
			s.headSeen = atomic.LoadUint64(s.head)
			if s.headSeen <= s.pos {
				if err := bo.wait(ctx); err != nil {
					return fmt.Errorf("shmring: receive: %w", err)
				}
				continue
			}
			if s.headSeen-s.pos > s.capacity {
				return fmt.Errorf("shmring: receive on %s: head %d, tail %d: %w", s.path, s.headSeen, s.pos, ErrCorrupt)
			}
		}
		rec, ok := s.committed()
		if !ok {
			// Reserved, being written.
			if err := bo.wait(ctx); err != nil {
				return fmt.Errorf("shmring: receive: %w", err)
			}
			continue
		}
		stride := *u64(rec, recStride)
		n := uint64(*u32(rec, recLen))
		if stride < recHeader+n || stride%recAlignment != 0 || stride > s.headSeen-s.pos {
			return fmt.Errorf("shmring: receive on %s: record at %d: stride %d, length %d: %w", s.path, s.pos, stride, n, ErrCorrupt)
		}
		g := *u64(rec, recGen)
		if g < gen {
			s.pos += stride
			atomic.StoreUint64(s.tail, s.pos)
			bo = backoff{}
			continue
		}
		*fr = allreduce.Frame{
			Generation: g,
			Step:       *u64(rec, recStep),
			Round:      *u32(rec, recRound),
			Seq:        *u32(rec, recSeq),
			Offset:     *u64(rec, recOffset),
		}
		start := (s.pos%s.capacity + recHeader) % s.capacity
		if start+n <= s.capacity {
			fr.Data = s.data[start : start+n : start+n]
		} else {
			k := s.capacity - start
			fr.Data = s.data[start:s.capacity:s.capacity]
			parts[0] = s.data[: n-k : n-k]
			fr.Parts = parts[:]
		}
		s.held, s.heldEnd, s.heldGen = true, s.pos+stride, g
		return nil
	}
}
