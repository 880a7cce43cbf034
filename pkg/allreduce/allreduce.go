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
	// Offset is the index of the frame's first element in the step's whole
	// buffer (Config.Offset plus the index within the call's buffer): the
	// frames of different buckets of one step differ in it.
	Offset uint64
	// Data holds the elements as raw little-endian float32 (4 bytes each)
	// or int64 (8 bytes each, two's complement), or, with WireBF16, as
	// little-endian bfloat16 (2 bytes each, padded to a multiple of 4 bytes)
	// followed by the Config.Exact float32 ones the frame covers.
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
	// multiple of the element size: 4 for float32, 8 for int64); 0 means
	// DefaultFrameBytes. All ranks must use the same value. A frame carries
	// at most FrameBytes/4 float32 elements, whatever the Wire, or
	// FrameBytes/8 int64 elements.
	FrameBytes int
	// Offset is the index of buf's first element in the step's whole
	// buffer, when a step's buffer is all-reduced in several buckets (one
	// call each, in the same order on every rank); frames carry it.
	Offset int
	// Wire is how elements travel (WireF32 unless set). All ranks must use
	// the same Wire and Exact. An int64 buffer always travels raw (WireF32
	// is the only Wire it accepts).
	Wire Wire
	// Exact is the number of buf's last elements that always travel as
	// float32 (the step's totals: loss sum and counts). Must be 0 for int64.
	Exact int
	// Residual, with WireBF16, receives for every element of buf what this
	// rank's rounding removed from the value it sent (error feedback: the
	// caller adds it to its next contribution). Every element is rounded
	// by exactly one send of this rank (reduce-scatter, or the owner's
	// first all-gather send), so every element gets its residual; Exact
	// elements and a ring of one get 0. Nil: not kept. len(buf) if set.
	// Must be nil for int64 buffers (nothing is rounded).
	Residual []float32
	// Final, if set, is called as elements [lo, hi) of buf (indices in
	// buf) come to hold their all-reduced values, while they are still in
	// cache: the segment this rank owns frame by frame as the last
	// reduce-scatter round completes it, the others as the all-gather
	// delivers them (a ring of one: the whole buffer at once). Every
	// element is reported once. It runs on the receiving goroutine, so it
	// delays the ring while it runs, and must not modify buf. Not with
	// WireBF16, whose owners round their segment once more when they send
	// it on.
	Final func(lo, hi int)
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

// ring is the static schedule of one call: segment boundaries and frame size,
// in elements, whatever their type.
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

// Element is the element type of a buffer AllReduce sums: float32 (the
// gradients, IEEE-754 sums) or int64 (fixed-point gradients, exact
// wrapping sums).
type Element interface{ float32 | int64 }

// AllReduce replaces buf, on every rank, by the element-wise sum of the buffers
// of all cfg.Size ranks, using a ring reduce-scatter followed by a ring
// all-gather over t (see the package documentation). All ranks must call it with
// the same Size, Generation, Step, FrameBytes, element type and len(buf).
// Afterwards all ranks hold bit-identical buffers. Size 1 is a no-op.
//
// float32 elements are summed in IEEE-754 single precision, int64 elements
// with wrapping two's complement addition (exact whenever the true sum
// fits in an int64, whatever the partial sums do). An int64 buffer accepts
// neither WireBF16, nor Residual, nor Exact > 0.
//
// On error (a rejected frame, a transport error, ctx done) buf holds partial
// sums and must be discarded; the error wraps ctx's error, the transport's error
// or a *FrameError.
func AllReduce[E Element](ctx context.Context, t Transport, cfg Config, buf []E) (Stats, error) {
	start := time.Now()
	if cfg.Size < 1 || cfg.Rank < 0 || cfg.Rank >= cfg.Size {
		return Stats{}, fmt.Errorf("allreduce: rank %d not in ring of size %d", cfg.Rank, cfg.Size)
	}
	fb := cfg.FrameBytes
	if fb == 0 {
		fb = DefaultFrameBytes
	}
	var c codec
	switch b := any(buf).(type) {
	case []float32:
		if fb < 4 {
			return Stats{}, fmt.Errorf("allreduce: frame size %d bytes is smaller than one float32", cfg.FrameBytes)
		}
		if cfg.Residual != nil && len(cfg.Residual) != len(b) {
			return Stats{}, fmt.Errorf("allreduce: residual has %d elements, buffer %d", len(cfg.Residual), len(b))
		}
		if cfg.Exact < 0 || cfg.Exact > len(b) {
			return Stats{}, fmt.Errorf("allreduce: %d exact elements in a buffer of %d", cfg.Exact, len(b))
		}
		if cfg.Residual != nil && (cfg.Size == 1 || cfg.Wire != WireBF16) {
			clear(cfg.Residual)
		}
		c = &f32Codec{buf: b, residual: cfg.Residual, wire: cfg.Wire, exactFrom: len(b) - cfg.Exact}
	case []int64:
		if err := checkInt64Config(cfg, fb); err != nil {
			return Stats{}, err
		}
		c = &i64Codec{buf: b}
	}
	if cfg.Final != nil && cfg.Wire == WireBF16 {
		return Stats{}, errors.New("allreduce: Final with the bf16 wire: an owner's values change when it sends them on")
	}
	if cfg.Size == 1 {
		if cfg.Final != nil && len(buf) > 0 {
			cfg.Final(0, len(buf))
		}
		return Stats{Duration: time.Since(start)}, nil
	}
	g := &ring{rank: cfg.Rank, size: cfg.Size, segs: shard.Split(len(buf), cfg.Size), frameElems: fb / c.elemBytes()}
	return run(ctx, t, cfg, g, c, start)
}

// checkInt64Config refuses the options that only make sense for float32:
// an int64 sum is exact, there is nothing to round nor to keep exact.
func checkInt64Config(cfg Config, fb int) error {
	switch {
	case fb < 8:
		return fmt.Errorf("allreduce: frame size %d bytes is smaller than one int64", cfg.FrameBytes)
	case cfg.Wire != WireF32:
		return fmt.Errorf("allreduce: wire %s rounds float32 values: an int64 buffer travels only as raw 8-byte integers (WireF32)", cfg.Wire)
	case cfg.Residual != nil:
		return errors.New("allreduce: a residual is what bf16 rounding removed: an int64 buffer is never rounded and takes none")
	case cfg.Exact != 0:
		return fmt.Errorf("allreduce: %d exact elements: an int64 buffer is exact throughout and takes no Exact tail", cfg.Exact)
	}
	return nil
}

// codec is what the ring schedule needs to know about a call's buffer: how
// its element range [off, end) looks as a frame payload. The sender
// goroutine calls encode only, the receiver bytes, add and copy.
type codec interface {
	// elemBytes is the size of an element in memory (frames carry at most
	// FrameBytes/elemBytes elements).
	elemBytes() int
	// bytes is the payload length of the frame carrying [off, end).
	bytes(off, end int) int
	// encode returns the payload of [off, end), sent in round r; it stays
	// valid until the next call.
	encode(g *ring, r, off, end int) []byte
	// add sums a received payload into [off, end) (reduce-scatter); copy
	// overwrites [off, end) with it (all-gather). f's length is checked.
	add(f *Frame, off, end int)
	copy(f *Frame, off, end int)
}

// f32Codec is a float32 buffer on the f32 or bf16 wire.
type f32Codec struct {
	buf       []float32
	residual  []float32 // Config.Residual
	wire      Wire
	exactFrom int    // elements from here on travel as float32
	scratch   []byte // the sender's encoding buffer (bf16, big-endian hosts)
}

func (c *f32Codec) elemBytes() int { return 4 }

// layout returns how elements [off, end) travel.
func (c *f32Codec) layout(off, end int) layout { return frameLayout(c.wire, off, end, c.exactFrom) }

func (c *f32Codec) bytes(off, end int) int { return c.layout(off, end).bytes() }

func (c *f32Codec) encode(g *ring, r, off, end int) (data []byte) {
	if c.wire == WireBF16 {
		data, c.scratch = encodeFrame(c.scratch, g, c, r, off, end)
	} else {
		data, c.scratch = encode(c.scratch, c.buf[off:end])
	}
	return data
}

func (c *f32Codec) add(f *Frame, off, end int) {
	applyFrame(c.buf[off:end], f, c.layout(off, end), addBF16, addLE)
}

func (c *f32Codec) copy(f *Frame, off, end int) {
	applyFrame(c.buf[off:end], f, c.layout(off, end), copyBF16, copyLE)
}

// i64Codec is an int64 buffer: raw little-endian two's complement, 8 bytes
// an element, added with wrapping addition.
type i64Codec struct {
	buf     []int64
	scratch []byte // the sender's encoding buffer (big-endian hosts)
}

func (c *i64Codec) elemBytes() int              { return 8 }
func (c *i64Codec) bytes(off, end int) int      { return 8 * (end - off) }
func (c *i64Codec) add(f *Frame, off, end int)  { applyPayload(c.buf[off:end], f, addInt64LE) }
func (c *i64Codec) copy(f *Frame, off, end int) { applyPayload(c.buf[off:end], f, copyInt64LE) }

func (c *i64Codec) encode(_ *ring, _, off, end int) (data []byte) {
	data, c.scratch = encodeInt64(c.scratch, c.buf[off:end])
	return data
}

// run is the ring itself, for any element type: the sender goroutine and
// the receiving caller, handing each other one token per frame.
func run(ctx context.Context, t Transport, cfg Config, g *ring, c codec, start time.Time) (Stats, error) {
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
		res.bytes, res.frames, res.err = sendLoop(ctx, t, cfg, g, c, recvBase, applied, sent)
		if res.err != nil {
			cancel(res.err)
		}
		done <- res
	}()

	recvBytes, rerr := recvLoop(ctx, t, cfg, g, c, sendBase, applied, sent)
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

func sendLoop(ctx context.Context, t Transport, cfg Config, g *ring, c codec, recvBase []int, applied <-chan struct{}, sent chan<- struct{}) (int64, int, error) {
	var (
		f       = Frame{Generation: cfg.Generation, Step: cfg.Step}
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
			f.Round, f.Seq, f.Offset = uint32(r), uint32(j), uint64(cfg.Offset+off)
			f.Data = c.encode(g, r, off, end)
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

func recvLoop(ctx context.Context, t Transport, cfg Config, g *ring, c codec, sendBase []int, applied chan<- struct{}, sent <-chan struct{}) (int64, error) {
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
			n := c.bytes(off, end)
			if err := check(f, cfg, r, j, cfg.Offset+off, n); err != nil {
				return nbytes, err
			}
			if r < g.size-1 {
				c.add(f, off, end)
				if r == g.size-2 && cfg.Final != nil {
					cfg.Final(off, end) // this rank's own segment, now summed
				}
			} else {
				// All-gather overwrites a region this rank sent in round
				// r-(N-1); the ring's causality guarantees that send happened,
				// the token makes it visible (and race-detector clean).
				if err := wait(ctx, sent, &have, sendBase[r-(g.size-1)]+j+1); err != nil {
					return nbytes, err
				}
				c.copy(f, off, end)
				if cfg.Final != nil {
					cfg.Final(off, end)
				}
			}
			nbytes += int64(n)
			applied <- struct{}{}
		}
	}
	return nbytes, nil
}

// check compares a received frame's header and payload length with the
// expected frame (round r, seq j, first element off in the step's buffer,
// n payload bytes).
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
	case f.PayloadLen() != n:
		return fail("length", uint64(f.PayloadLen()), uint64(n))
	}
	return nil
}

// encodeFrame writes the bfloat16 frame of elements [off, end) sent in
// round r into scratch. In rounds 0..N-1 this rank rounds values it formed
// (partial sums, then in round N-1 the reduced segment it owns, which it
// replaces by the rounded values so that every rank ends with the same
// bits) and keeps what rounding removed in Config.Residual; later all-gather
// rounds forward values that are already bfloat16 and round nothing.
func encodeFrame(scratch []byte, g *ring, c *f32Codec, r, off, end int) (data, _ []byte) {
	buf, residual := c.buf, c.residual
	l := c.layout(off, end)
	if cap(scratch) < l.bytes() {
		scratch = make([]byte, l.bytes())
	}
	data = scratch[:l.bytes()]
	var res []float32
	if residual != nil && r < g.size {
		res = residual[off : off+l.n16]
	}
	encodeBF16(data, buf[off:off+l.n16], res, r == g.size-1)
	clear(data[2*l.n16 : 2*l.n16+l.pad])
	exact, _ := encode(nil, buf[off+l.n16:end])
	copy(data[2*l.n16+l.pad:], exact)
	if residual != nil && r < g.size {
		clear(residual[off+l.n16 : end])
	}
	return data, scratch
}
