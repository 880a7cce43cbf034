package linalg

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// fmaBig is x*y+z rounded once to float32, computed exactly with math/big.
func fmaBig(x, y, z float32) float32 {
	bx, by, bz := big.NewFloat(float64(x)), big.NewFloat(float64(y)), big.NewFloat(float64(z))
	p := new(big.Float).SetPrec(200).Mul(bx, by)
	p.Add(p, bz)
	f, _ := p.Float32()
	return f
}

func TestFMA32MatchesExactRounding(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	rnd := func() float32 {
		// Mantissas and exponents that make halfway cases likely.
		return float32(math.Ldexp(float64(int32(r.Uint32()>>8)-1<<23), r.IntN(20)-30))
	}
	cases := [][3]float32{
		{1, 1, 0}, {0.1, 10, -1}, {1 + 1.0/(1<<23), 1 - 1.0/(1<<23), -1},
		{float32(math.Ldexp(1, 12) + 1), float32(math.Ldexp(1, 12) - 1), float32(-math.Ldexp(1, 24))},
	}
	for range 200000 {
		cases = append(cases, [3]float32{rnd(), rnd(), rnd()})
	}
	for i, c := range cases {
		got, want := FMA32(c[0], c[1], c[2]), fmaBig(c[0], c[1], c[2])
		if math.Float32bits(got) != math.Float32bits(want) && !(got == 0 && want == 0) {
			t.Fatalf("case %d: FMA32(%g, %g, %g) = %g, exact rounding gives %g", i, c[0], c[1], c[2], got, want)
		}
	}
}

// randMat returns rows x cols values in [-1, 1) times scale.
func randMat(r *rand.Rand, rows, cols int, scale float32) []float32 {
	m := make([]float32, rows*cols)
	for i := range m {
		m[i] = (2*r.Float32() - 1) * scale
	}
	return m
}

func TestFixedGemmTNMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct{ m, n, k, block, frac, threads int }{
		{1, 1, 1, 1, 32, 1}, {3, 5, 7, 2, 32, 1}, {17, 50, 33, 16, 32, 2},
		{9, 49, 64, 16, 40, 3}, {8, 48, 16, 16, 20, 1}, {31, 97, 100, 32, 32, 2},
	} {
		a := randMat(r, tc.k, tc.m, 1)
		b := randMat(r, tc.k, tc.n, 4)
		want := make([]int64, tc.m*tc.n)
		for i := range want {
			want[i] = int64(r.Uint64() >> 20)
		}
		got := append([]int64(nil), want...)
		wmax := FixedGemmTNRef(tc.m, tc.n, tc.k, tc.block, a, tc.m, b, tc.n, tc.frac, want, tc.n)
		p := NewPool(tc.threads)
		p.c.minMACs = 1
		gmax := p.FixedGemmTN(tc.m, tc.n, tc.k, tc.block, a, tc.m, b, tc.n, tc.frac, got, tc.n)
		p.Close()
		if gmax != wmax {
			t.Errorf("%+v: max |s| %g, reference %g", tc, gmax, wmax)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%+v: element %d is %d, reference %d", tc, i, got[i], want[i])
			}
		}
	}
}

// TestFixedBlocksAnyGrouping is the point of the format: the total over a
// batch is the same however its blocks are grouped (one call over all
// rows, or a call per group of whole blocks, in any order).
func TestFixedBlocksAnyGrouping(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const m, n, k, block, frac = 7, 30, 80, 16, 32
	a, b := randMat(r, k, m, 1), randMat(r, k, n, 1)
	whole := make([]int64, m*n)
	NewPool(1).FixedGemmTN(m, n, k, block, a, m, b, n, frac, whole, n)
	for _, cuts := range [][]int{{0, 16, 16, 80}, {48, 80, 0, 48}, {64, 80, 16, 64, 0, 16}} {
		got := make([]int64, m*n)
		for i := 0; i+1 < len(cuts); i += 2 {
			lo, hi := cuts[i], cuts[i+1]
			NewPool(1).FixedGemmTN(m, n, hi-lo, block, a[lo*m:], m, b[lo*n:], n, frac, got, n)
		}
		for i := range got {
			if got[i] != whole[i] {
				t.Fatalf("groups %v: element %d is %d, one call gives %d", cuts, i, got[i], whole[i])
			}
		}
	}
}

func TestFixedMaxReportsNaNAndLarge(t *testing.T) {
	a := []float32{1, 2, 3, 4}
	b := []float32{1, float32(math.NaN()), 1, 1}
	c := make([]int64, 4)
	if mx := NewPool(1).FixedGemmTN(2, 2, 2, 1, a, 2, b, 2, 8, c, 2); !math.IsNaN(float64(mx)) {
		t.Errorf("max with a NaN input = %g, want NaN", mx)
	}
	b[1] = -1e6
	if mx := NewPool(1).FixedGemmTN(2, 2, 2, 2, a, 2, b, 2, 8, c, 2); mx != 1999996 {
		t.Errorf("max = %g, want 2*-1e6 + 4*1 = 1999996 in magnitude", mx)
	}
	cs := make([]int64, 2)
	if mx := FixedColumnSums(2, 2, 2, []float32{1, -3, 2, -3}, 2, 8, cs); mx != 6 || cs[0] != 3<<8 || cs[1] != -6<<8 {
		t.Errorf("column sums %v max %g, want [768 -1536] max 6", cs, mx)
	}
}

func TestFixedToFloat(t *testing.T) {
	src := []int64{0, 1 << 32, -3 << 31, 1<<53 + 1}
	dst := make([]float32, len(src))
	FixedToFloat(dst, src, 32)
	want := []float32{0, 1, -1.5, float32(math.Ldexp(1, 21))}
	for i := range dst {
		if dst[i] != want[i] {
			t.Errorf("FixedToFloat(%d) = %g, want %g", src[i], dst[i], want[i])
		}
	}
	if l := FixedLimit(32, 16); l != math.Ldexp(1, 26) {
		t.Errorf("FixedLimit(32, 16) = %g, want 2^26", l)
	}
}
