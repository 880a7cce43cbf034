package allreduce

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Wire is the encoding of buffer elements in frames.
type Wire uint8

// The wire encodings.
const (
	// WireF32 sends every element as its little-endian float32 bits:
	// lossless, 4 bytes per element.
	WireF32 Wire = iota
	// WireBF16 rounds every element (except Config.Exact trailing ones) to
	// bfloat16, round to nearest even, 2 bytes per element. Sums are still
	// formed in float32 at every hop; only what crosses the wire is rounded.
	WireBF16
)

// ParseWire maps a command-line name (f32, bf16) to a Wire.
func ParseWire(s string) (Wire, error) {
	switch s {
	case "f32", "":
		return WireF32, nil
	case "bf16":
		return WireBF16, nil
	}
	return 0, fmt.Errorf("unknown wire encoding %q (want f32 or bf16)", s)
}

// String returns the command-line name.
func (w Wire) String() string {
	if w == WireBF16 {
		return "bf16"
	}
	return "f32"
}

// layout says how the elements [off, end) of a buffer (offsets within the
// buffer of one AllReduce call) travel: the first n16 as bfloat16, padded
// to a multiple of 4 bytes (so that every payload stays a whole number of
// 32-bit words), then n32 as float32.
type layout struct{ n16, pad, n32 int }

func frameLayout(w Wire, off, end, exactFrom int) layout {
	if w != WireBF16 {
		return layout{n32: end - off}
	}
	n16 := max(0, min(end, exactFrom)-off)
	return layout{n16: n16, pad: (2 * n16) % 4, n32: end - off - n16}
}

func (l layout) bytes() int { return 2*l.n16 + l.pad + 4*l.n32 }

// bf16Round returns v rounded to bfloat16 (round to nearest, ties to even),
// as the upper 16 bits of a float32. NaNs stay NaNs (quiet), infinities
// stay infinities; a finite value beyond bfloat16's range becomes an
// infinity, which the step's finiteness check then reports.
func bf16Round(v float32) uint16 {
	b := math.Float32bits(v)
	if b&0x7fffffff > 0x7f800000 { // NaN: keep it a NaN after truncation
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

func bf16Value(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// encodeBF16 writes src rounded to bfloat16 into dst (2*len(src) bytes,
// little-endian). If residual is not nil it receives, element by element,
// what the rounding removed (src - rounded); if own is true src itself is
// replaced by the rounded values (the owner of a reduced segment keeps what
// the others will receive).
func encodeBF16(dst []byte, src, residual []float32, own bool) {
	dst = dst[:2*len(src)]
	if n := encodeBF16Vec(dst, src, residual, own); n > 0 {
		dst, src = dst[2*n:], src[n:]
		if residual != nil {
			residual = residual[n:]
		}
	}
	encodeBF16Scalar(dst, src, residual, own)
}

// encodeBF16Scalar is encodeBF16 one element at a time.
func encodeBF16Scalar(dst []byte, src, residual []float32, own bool) {
	for i, v := range src {
		h := bf16Round(v)
		binary.LittleEndian.PutUint16(dst[2*i:], h)
		r := bf16Value(h)
		if residual != nil {
			residual[i] = v - r
		}
		if own {
			src[i] = r
		}
	}
}

// addBF16 adds the little-endian bfloat16s in src (2*len(dst) bytes) into dst.
func addBF16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	if n := addBF16Vec(dst, src); n > 0 {
		dst, src = dst[n:], src[2*n:]
	}
	for i := range dst {
		dst[i] += bf16Value(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

// copyBF16 widens the little-endian bfloat16s in src (2*len(dst) bytes) into dst.
func copyBF16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	if n := copyBF16Vec(dst, src); n > 0 {
		dst, src = dst[n:], src[2*n:]
	}
	for i := range dst {
		dst[i] = bf16Value(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

// cursor reads a frame's payload (Data, then each of Parts) as one byte
// stream split at arbitrary boundaries.
type cursor struct {
	cur  []byte
	rest [][]byte
}

func newCursor(f *Frame) cursor { return cursor{cur: f.Data, rest: f.Parts} }

// peek returns the unread bytes of the current piece, moving on to the
// next non-empty piece when the current one is exhausted.
func (c *cursor) peek() []byte {
	for len(c.cur) == 0 && len(c.rest) > 0 {
		c.cur, c.rest = c.rest[0], c.rest[1:]
	}
	return c.cur
}

// skip discards n bytes (across pieces).
func (c *cursor) skip(n int) {
	for n > 0 {
		p := c.peek()
		k := min(n, len(p))
		c.cur = p[k:]
		n -= k
	}
}

// applyElems applies op to dst and the next es*len(dst) payload bytes of c
// (elements of es <= 8 bytes each). Runs within a piece go to op whole; an
// element that straddles two pieces is reassembled in a carry first.
func applyElems[E Element](c *cursor, dst []E, es int, op func(dst []E, src []byte)) {
	var carry [8]byte
	for len(dst) > 0 {
		p := c.peek()
		if m := min(len(p)/es, len(dst)); m > 0 {
			op(dst[:m], p[:m*es])
			dst = dst[m:]
			c.cur = p[m*es:]
			continue
		}
		k := 0
		for k < es {
			p := c.peek()
			n := copy(carry[k:es], p)
			c.cur = p[n:]
			k += n
		}
		op(dst[:1], carry[:es])
		dst = dst[1:]
	}
}
