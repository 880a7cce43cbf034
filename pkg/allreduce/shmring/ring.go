package shmring

import (
	"context"
	"errors"
	"fmt"
	"os"
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

// slow reports whether the wait has reached its sleeping phase: what waits
// that long is worth a system call to check on (is the process holding
// things up still alive?), a live producer having published within
// microseconds.
func (b *backoff) slow() bool { return b.n > spinRounds+yieldRounds }

// selfPid is this process's pid, as producers record it.
var selfPid = uint64(os.Getpid())

func roundUp(n, a uint64) uint64 { return (n + a - 1) &^ (a - 1) }

// send writes f into p's ring: reserve a record and write its header
// (reserve), copy the payload, then publish the record by storing its commit
// word.
func (p *peer) send(ctx context.Context, f *allreduce.Frame) error {
	n := uint64(f.PayloadLen())
	stride := recHeader + roundUp(n, recAlignment)
	if stride > p.capacity {
		return fmt.Errorf("shmring: send to %s: a frame of %d bytes does not fit a ring of %d", p.path, n, p.capacity)
	}
	h, err := p.reserveRecord(ctx, f, n, stride)
	if err != nil {
		return err
	}
	pos := h % p.capacity
	rec := p.data[pos : pos+recHeader]
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

// reserveRecord reserves stride bytes at the ring's head for f (n payload
// bytes) and writes the record's header, under the segment's reservation
// lock: it takes the lock (a compare-and-swap of the lock word from 0 to this
// process's pid, or from the pid of a dead holder), and, once the consumer
// has released enough room (tail is cached and reloaded only when the cached
// value shows too little; the lock is dropped while it waits), writes the
// header, with this process's pid, advances head past the record and drops
// the lock. So every record below head has its header written, and one
// whose producer died before publishing it can be recognised and skipped by
// the consumer (Segment.abandoned), and concurrent producers (a stale left
// neighbour still sending frames of an aborted generation) write disjoint
// records. It returns the record's position.
func (p *peer) reserveRecord(ctx context.Context, f *allreduce.Frame, n, stride uint64) (uint64, error) {
	var bo backoff
	for {
		owner := atomic.LoadUint64(p.reserve)
		switch {
		case owner == 0 && atomic.CompareAndSwapUint64(p.reserve, 0, selfPid):
		case owner != 0 && bo.slow() && !pidAlive(int(owner)) && atomic.CompareAndSwapUint64(p.reserve, owner, selfPid):
			// Its holder died holding it; head and the header below it
			// are as it left them, consistent either way.
		default:
			if err := bo.wait(ctx); err != nil {
				return 0, fmt.Errorf("shmring: send to %s: %w", p.path, err)
			}
			continue
		}
		h := atomic.LoadUint64(p.head)
		if h < p.tailSeen || h-p.tailSeen+stride > p.capacity {
			p.tailSeen = atomic.LoadUint64(p.tail)
		}
		t := p.tailSeen
		if t > h || h-t > p.capacity {
			atomic.StoreUint64(p.reserve, 0)
			return 0, fmt.Errorf("shmring: send to %s: head %d, tail %d: %w", p.path, h, t, ErrCorrupt)
		}
		if h-t+stride <= p.capacity {
			pos := h % p.capacity
			rec := p.data[pos : pos+recHeader]
			*u64(rec, recStride) = stride
			*u64(rec, recGen) = f.Generation
			*u64(rec, recStep) = f.Step
			*u64(rec, recOffset) = f.Offset
			*u32(rec, recRound) = f.Round
			*u32(rec, recSeq) = f.Seq
			*u32(rec, recLen) = uint32(n)
			*u32(rec, recPid) = uint32(selfPid)
			atomic.StoreUint64(p.head, h+stride)
			if testHookReserved != nil {
				testHookReserved(rec)
			}
			atomic.StoreUint64(p.reserve, 0)
			return h, nil
		}
		atomic.StoreUint64(p.reserve, 0)
		if err := bo.wait(ctx); err != nil {
			return 0, fmt.Errorf("shmring: send to %s: %w", p.path, err)
		}
	}
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
// published; testHookReserved sees it once head has moved past it, before
// the reservation lock is dropped.
var testHookPublish, testHookReserved func(rec []byte)

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
		if ok && *u64(rec, recGen) >= gen || !ok && !s.abandoned(rec) {
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

// abandoned reports whether rec, the record at the consumer position, which
// was not published when committed looked, never will be: the process that
// reserved it (its pid is in the header, written before head moved past
// it) has died. Checking costs a system call.
func (s *Segment) abandoned(rec []byte) bool {
	if pidAlive(int(*u32(rec, recPid))) {
		return false
	}
	// The producer may have published it and exited since.
	_, ok := s.committed()
	return !ok
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
		stride := *u64(rec, recStride)
		n := uint64(*u32(rec, recLen))
		if stride < recHeader+n || stride%recAlignment != 0 || stride > s.headSeen-s.pos {
			return fmt.Errorf("shmring: receive on %s: record at %d: stride %d, length %d: %w", s.path, s.pos, stride, n, ErrCorrupt)
		}
		if !ok && !(bo.slow() && s.abandoned(rec)) {
			// Reserved, being written (by a live producer, as far as
			// checked).
			if err := bo.wait(ctx); err != nil {
				return fmt.Errorf("shmring: receive: %w", err)
			}
			continue
		}
		g := *u64(rec, recGen)
		if !ok || g < gen {
			// Abandoned by its dead producer, or of an older generation.
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
