package allreduce

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ringtrain/ringtrain/pkg/shard"
)

// DefaultFrameBytes is the frame payload size used when Config.FrameBytes is 0.
// Chosen by BenchmarkAllReduce (pkg/allreduce/grpcring) on loopback gRPC.
const DefaultFrameBytes = 512 << 10

// Frame is one contiguous piece of one segment of the buffer, as carried by a
// Transport. The header fields identify exactly which piece it is; the receiver
// checks all of them (and len(Data)) before using Data.
type Frame struct {
	// Generation is the ring generation (changes whenever the ring is re-formed).
	Generation uint64
	// Step is the global training step the all-reduce belongs to.
	Step uint64
	// Round is 0..N-2 during reduce-scatter and N-1..2N-3 during all-gather.
	Round uint32
	// Seq is the index of the frame within its round, from 0.
	Seq uint32
	// Offset is the index of the frame's first element in the buffer (float32 elements).
	Offset uint64
	// Data holds the elements as raw little-endian float32 (4 bytes each).
	Data []byte
	// Parts continues the payload: the frame's payload is Data followed by
	// each element of Parts, in order, split at arbitrary byte boundaries (an
	// element may straddle two pieces). AllReduce always sends frames with Parts
	// nil; a Transport's Recv may use it to hand over its receive buffers as they
	// are, without copying them into one contiguous slice.
	Parts [][]byte
}

// PayloadLen returns the payload length of f in bytes: len(Data) plus the
// lengths of Parts.
func (f *Frame) PayloadLen() int {
	n := len(f.Data)
	for _, p := range f.Parts {
		n += len(p)
	}
	return n
}

// Transport moves frames between a worker and its two ring neighbours.
//
// AllReduce calls Send from one goroutine and Recv from another, concurrently;
// an implementation need not support concurrent calls of the same method.
// Ownership: Send must not retain f or f.Data, nor read f.Data, after it
// returns (it has transmitted or copied them by then). The frame returned by
// Recv, its Data and Parts, belong to the caller until the next call to Recv. Both methods must return promptly with an error
// wrapping ctx.Err() once ctx is done.
type Transport interface {
	// Send delivers f to the right neighbour (rank+1 mod N).
	Send(ctx context.Context, f *Frame) error
	// Recv returns the next frame from the left neighbour (rank-1 mod N).
	Recv(ctx context.Context) (*Frame, error)
}

// Config describes one all-reduce call.
type Config struct {
	// Rank is this worker's position in the ring, 0 <= Rank < Size.
	Rank int
	// Size is the number of workers in the ring (N).
	Size int
	// Generation and Step are stamped on every frame and checked on receipt.
	Generation, Step uint64
	// FrameBytes is the largest frame payload in bytes (rounded down to a
	// multiple of 4); 0 means DefaultFrameBytes. All ranks must use the same value.
	FrameBytes int
}

// Stats reports one all-reduce call.
type Stats struct {
	// BytesSent and BytesRecv count frame payload bytes (not headers).
	BytesSent, BytesRecv int64
	// Frames is the number of frames sent.
	Frames int
	// Duration is the wall time of the call.
	Duration time.Duration
}

// FrameError reports a received frame that is not the one expected; the frame's
// data was not used.
type FrameError struct {
	// Field names the first header field that differs: "generation", "step",
	// "round", "seq", "offset" or "length" (payload bytes).
	Field string
	// Got and Want are the received and expected values of Field.
	Got, Want uint64
	// Round and Seq locate the expected frame.
	Round, Seq uint32
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("allreduce: frame rejected: %s is %d, want %d (expected round %d seq %d)",
		e.Field, e.Got, e.Want, e.Round, e.Seq)
}

// ring is the static schedule of one call: segment boundaries and frame size.
type ring struct {
	rank, size int
	segs       []shard.Range
	frameElems int
}

// seg returns the segment sent in round t (sendSeg) or received in round t-1.
// Both phases use the same formula: in round t rank r sends segment (r-t) mod N
// and receives segment (r-t-1) mod N.
func (g *ring) sendSeg(t int) shard.Range { return g.segs[mod(g.rank-t, g.size)] }
func (g *ring) recvSeg(t int) shard.Range { return g.segs[mod(g.rank-t-1, g.size)] }

// frames returns the number of frames a segment is cut into.
func (g *ring) frames(s shard.Range) int { return (s.Len() + g.frameElems - 1) / g.frameElems }

// frame returns the element range of frame j of segment s.
func (g *ring) frame(s shard.Range, j int) (off, end int) {
	off = s.Start + j*g.frameElems
	return off, min(off+g.frameElems, s.End)
}

func mod(a, n int) int { return ((a % n) + n) % n }

// AllReduce replaces buf, on every rank, by the element-wise sum of the buffers
// of all cfg.Size ranks, using a ring reduce-scatter followed by a ring
// all-gather over t (see the package documentation). All ranks must call it with
// the same Size, Generation, Step, FrameBytes and len(buf). Afterwards all ranks
// hold bit-identical buffers. Size 1 is a no-op.
//
// On error (a rejected frame, a transport error, ctx done) buf holds partial
// sums and must be discarded; the error wraps ctx's error, the transport's error
// or a *FrameError.
func AllReduce(ctx context.Context, t Transport, cfg Config, buf []float32) (Stats, error) {
	start := time.Now()
	if cfg.Size < 1 || cfg.Rank < 0 || cfg.Rank >= cfg.Size {
		return Stats{}, fmt.Errorf("allreduce: rank %d not in ring of size %d", cfg.Rank, cfg.Size)
	}
	fb := cfg.FrameBytes
	if fb == 0 {
		fb = DefaultFrameBytes
	}
	if fb < 4 {
		return Stats{}, fmt.Errorf("allreduce: frame size %d bytes is smaller than one float32", cfg.FrameBytes)
	}
	if cfg.Size == 1 {
		return Stats{Duration: time.Since(start)}, nil
	}
	g := &ring{rank: cfg.Rank, size: cfg.Size, segs: shard.Split(len(buf), cfg.Size), frameElems: fb / 4}

	// recvBase[t] is the index of round t's first received frame; sendBase the same for sends.
	rounds := 2 * (cfg.Size - 1)
	recvBase := make([]int, rounds+1)
	sendBase := make([]int, rounds+1)
	for r := range rounds {
		recvBase[r+1] = recvBase[r] + g.frames(g.recvSeg(r))
		sendBase[r+1] = sendBase[r] + g.frames(g.sendSeg(r))
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// applied carries one token per received frame applied to buf (receiver ->
	// sender); sent one token per frame handed to Send (sender -> receiver).
	// Both are buffered for the whole call so neither side ever blocks on them.
	applied := make(chan struct{}, recvBase[rounds])
	sent := make(chan struct{}, sendBase[rounds])
	type sendResult struct {
		bytes  int64
		frames int
		err    error
	}
	done := make(chan sendResult, 1)
	go func() {
		var res sendResult
		res.bytes, res.frames, res.err = sendLoop(ctx, t, cfg, g, recvBase, applied, sent, buf)
		if res.err != nil {
			cancel(res.err)
		}
		done <- res
	}()

	recvBytes, rerr := recvLoop(ctx, t, cfg, g, sendBase, applied, sent, buf)
	if rerr != nil {
		cancel(rerr)
	}
	res := <-done
	st := Stats{BytesSent: res.bytes, BytesRecv: recvBytes, Frames: res.frames, Duration: time.Since(start)}
	err := rerr
	// Prefer the root cause: a send error that cancelled the receiver, not the cancellation.
	if res.err != nil && (err == nil || errors.Is(err, context.Canceled)) {
		err = res.err
	}
	if err != nil {
		return st, fmt.Errorf("allreduce: rank %d of %d, generation %d, step %d: %w", cfg.Rank, cfg.Size, cfg.Generation, cfg.Step, err)
	}
	return st, nil
}

// wait takes n tokens from ch, or returns the reason ctx ended.
func wait(ctx context.Context, ch <-chan struct{}, have *int, need int) error {
	for *have < need {
		select {
		case <-ch:
			*have++
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

func sendLoop(ctx context.Context, t Transport, cfg Config, g *ring, recvBase []int, applied <-chan struct{}, sent chan<- struct{}, buf []float32) (int64, int, error) {
	var (
		f       = Frame{Generation: cfg.Generation, Step: cfg.Step}
		scratch []byte
		nbytes  int64
		nframes int
		have    int
	)
	for r := range 2 * (g.size - 1) {
		s := g.sendSeg(r)
		for j := range g.frames(s) {
			if r > 0 {
				// The segment sent in round r is the one received in round r-1:
				// frame j can go once frame j of round r-1 has been applied.
				if err := wait(ctx, applied, &have, recvBase[r-1]+j+1); err != nil {
					return nbytes, nframes, err
				}
			}
			off, end := g.frame(s, j)
			f.Round, f.Seq, f.Offset = uint32(r), uint32(j), uint64(off)
			f.Data, scratch = encode(scratch, buf[off:end])
			if err := t.Send(ctx, &f); err != nil {
				return nbytes, nframes, fmt.Errorf("send round %d seq %d: %w", r, j, err)
			}
			nbytes += int64(len(f.Data))
			nframes++
			sent <- struct{}{}
		}
	}
	return nbytes, nframes, nil
}

func recvLoop(ctx context.Context, t Transport, cfg Config, g *ring, sendBase []int, applied chan<- struct{}, sent <-chan struct{}, buf []float32) (int64, error) {
	var (
		nbytes int64
		have   int
	)
	for r := range 2 * (g.size - 1) {
		s := g.recvSeg(r)
		for j := range g.frames(s) {
			f, err := t.Recv(ctx)
			if err != nil {
				return nbytes, fmt.Errorf("receive round %d seq %d: %w", r, j, err)
			}
			off, end := g.frame(s, j)
			if err := check(f, cfg, r, j, off, end-off); err != nil {
				return nbytes, err
			}
			if r < g.size-1 {
				applyPayload(buf[off:end], f, addLE)
			} else {
				// All-gather overwrites a region this rank sent in round
				// r-(N-1); the ring's causality guarantees that send happened,
				// the token makes it visible (and race-detector clean).
				if err := wait(ctx, sent, &have, sendBase[r-(g.size-1)]+j+1); err != nil {
					return nbytes, err
				}
				applyPayload(buf[off:end], f, copyLE)
			}
			nbytes += int64(4 * (end - off))
			applied <- struct{}{}
		}
	}
	return nbytes, nil
}

// check compares a received frame's header and payload length with the
// expected frame (round r, seq j, elements [off, off+n)).
func check(f *Frame, cfg Config, r, j, off, n int) error {
	fail := func(field string, got, want uint64) error {
		return &FrameError{Field: field, Got: got, Want: want, Round: uint32(r), Seq: uint32(j)}
	}
	switch {
	case f.Generation != cfg.Generation:
		return fail("generation", f.Generation, cfg.Generation)
	case f.Step != cfg.Step:
		return fail("step", f.Step, cfg.Step)
	case f.Round != uint32(r):
		return fail("round", uint64(f.Round), uint64(r))
	case f.Seq != uint32(j):
		return fail("seq", uint64(f.Seq), uint64(j))
	case f.Offset != uint64(off):
		return fail("offset", f.Offset, uint64(off))
	case f.PayloadLen() != 4*n:
		return fail("length", uint64(f.PayloadLen()), uint64(4*n))
	}
	return nil
}
