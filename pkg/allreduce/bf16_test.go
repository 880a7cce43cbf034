package allreduce

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// bf16Cases are float32 values at the edges of bfloat16 rounding: ties
// (lower 16 bits 0x8000) to even and odd, just above and below a tie,
// values that round up into the next binade or to infinity, subnormals,
// zeros of both signs, infinities and NaNs (quiet, signalling, with
// payloads).
func bf16Cases() []float32 {
	bits := []uint32{
		0x3f808000, 0x3f818000, 0x3f807fff, 0x3f808001, 0x3f7fffff, 0x7f7fffff, 0x7f7f8000, 0x7f7f7fff,
		0x00000001, 0x00008000, 0x00018000, 0x007fffff, 0x80000001, 0x00000000, 0x80000000,
		0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xff800001, 0x7fbfffff, 0xffc12345,
	}
	out := make([]float32, 0, 64)
	for _, b := range bits {
		out = append(out, math.Float32frombits(b))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for len(out) < 64 {
		out = append(out, math.Float32frombits(rng.Uint32()))
	}
	return out
}

func sameBits(a, b float32) bool {
	if a != a && b != b { // NaN payloads of a subtraction may differ between units
		return true
	}
	return math.Float32bits(a) == math.Float32bits(b)
}

// TestBF16VectorMatchesScalar: the AVX2 kernels give the scalar loops'
// bits for every lane, with and without residual and own, at every length
// (prefix handled by the vector kernel, the tail by the scalar loop).
func TestBF16VectorMatchesScalar(t *testing.T) {
	cases := bf16Cases()
	for _, n := range []int{0, 1, 15, 16, 17, 33, 64} {
		for _, own := range []bool{false, true} {
			for _, withRes := range []bool{false, true} {
				t.Run(fmt.Sprintf("n=%d/own=%v/res=%v", n, own, withRes), func(t *testing.T) {
					srcV, srcS := append([]float32(nil), cases[:n]...), append([]float32(nil), cases[:n]...)
					dstV, dstS := make([]byte, 2*n), make([]byte, 2*n)
					var resV, resS []float32
					if withRes {
						resV, resS = make([]float32, n), make([]float32, n)
					}
					encodeBF16(dstV, srcV, resV, own)
					encodeBF16Scalar(dstS, srcS, resS, own)
					for i := range n {
						if dstV[2*i] != dstS[2*i] || dstV[2*i+1] != dstS[2*i+1] {
							t.Fatalf("element %d (%08x): vector %02x%02x, scalar %02x%02x", i, math.Float32bits(cases[i]), dstV[2*i+1], dstV[2*i], dstS[2*i+1], dstS[2*i])
						}
						if !sameBits(srcV[i], srcS[i]) {
							t.Fatalf("element %d: own value vector %08x, scalar %08x", i, math.Float32bits(srcV[i]), math.Float32bits(srcS[i]))
						}
						if withRes && !sameBits(resV[i], resS[i]) {
							t.Fatalf("element %d (%08x): residual vector %08x, scalar %08x", i, math.Float32bits(cases[i]), math.Float32bits(resV[i]), math.Float32bits(resS[i]))
						}
					}
					// Widening back: add and copy against element-wise math.
					base := make([]float32, n)
					for i := range base {
						base[i] = float32(i) * 0.5
					}
					got := append([]float32(nil), base...)
					addBF16(got, dstV)
					cp := make([]float32, n)
					copyBF16(cp, dstV)
					for i := range n {
						h := uint16(dstS[2*i]) | uint16(dstS[2*i+1])<<8
						if want := base[i] + bf16Value(h); !sameBits(got[i], want) {
							t.Fatalf("add element %d: %g, want %g", i, got[i], want)
						}
						if !sameBits(cp[i], bf16Value(h)) {
							t.Fatalf("copy element %d: %g, want %g", i, cp[i], bf16Value(h))
						}
					}
				})
			}
		}
	}
}

// TestBF16Round pins the rounding on hand-checked values.
func TestBF16Round(t *testing.T) {
	for _, c := range []struct {
		in   uint32
		want uint16
	}{
		{0x3f808000, 0x3f80}, // tie, even below: stays
		{0x3f818000, 0x3f82}, // tie, odd below: up to even
		{0x3f808001, 0x3f81}, // above the tie: up
		{0x3f807fff, 0x3f80}, // below the tie: down
		{0x7f7fffff, 0x7f80}, // the largest float32 rounds to infinity
		{0x7f800000, 0x7f80}, // infinity stays
		{0x7f800001, 0x7fc0}, // a signalling NaN becomes quiet, still a NaN
		{0x80000000, 0x8000}, // -0 stays -0
	} {
		if got := bf16Round(math.Float32frombits(c.in)); got != c.want {
			t.Errorf("bf16Round(%08x) = %04x, want %04x", c.in, got, c.want)
		}
	}
}
