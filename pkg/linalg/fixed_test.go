package linalg

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
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

// fixedCase is one FixedGemmTN problem of the table-driven kernel tests.
type fixedCase struct {
	name                 string
	m, n, k, block, frac int
	pad                  int     // extra row stride of a, b and c
	scaleA, scaleB       float32 // magnitudes of the inputs
	halves               bool    // inputs are multiples of 1/2 (ties at frac 0)
	special              func(a, b []float32, lda, ldb int)
}

func (tc fixedCase) operands(r *rand.Rand) (a []float32, lda int, b []float32, ldb int, c []int64, ldc int) {
	lda, ldb, ldc = tc.m+tc.pad, tc.n+tc.pad, tc.n+tc.pad
	a = randMat(r, tc.k, lda, tc.scaleA)
	b = randMat(r, tc.k, ldb, tc.scaleB)
	if tc.halves {
		for i := range a {
			a[i] = float32(math.Round(float64(a[i]))) / 2
		}
		for i := range b {
			b[i] = float32(math.Round(float64(b[i]))) / 2
		}
	}
	if tc.special != nil {
		tc.special(a, b, lda, ldb)
	}
	c = make([]int64, max(tc.m*ldc, 1))
	for i := range c {
		c[i] = int64(r.Uint64()>>24) - 1<<39
	}
	return a, lda, b, ldb, c, ldc
}

var fixedCases = []fixedCase{
	{name: "one", m: 1, n: 1, k: 1, block: 1, frac: 32},
	{name: "full tile", m: 8, n: 48, k: 16, block: 16, frac: 32},
	{name: "full tiles", m: 16, n: 96, k: 64, block: 16, frac: 32},
	{name: "edge rows", m: 13, n: 48, k: 32, block: 16, frac: 32},
	{name: "edge cols", m: 8, n: 50, k: 32, block: 16, frac: 32},
	{name: "edge both", m: 21, n: 101, k: 45, block: 16, frac: 32},
	{name: "k not multiple", m: 17, n: 97, k: 71, block: 32, frac: 32},
	{name: "k < block", m: 9, n: 49, k: 5, block: 16, frac: 32},
	{name: "block 1", m: 10, n: 60, k: 7, block: 1, frac: 32},
	{name: "block > kcMax", m: 8, n: 48, k: 700, block: 600, frac: 20},
	{name: "many depth blocks", m: 24, n: 144, k: 1200, block: 16, frac: 20},
	{name: "frac 0 ties", m: 16, n: 100, k: 33, block: 16, frac: 0, scaleA: 8, scaleB: 8, halves: true},
	{name: "frac 20", m: 11, n: 53, k: 64, block: 32, frac: 20, scaleB: 100},
	{name: "frac 40", m: 19, n: 77, k: 48, block: 16, frac: 40, scaleA: 0.5},
	{name: "frac 62 tiny", m: 8, n: 48, k: 16, block: 16, frac: 62, scaleA: 1e-10, scaleB: 1e-10},
	{name: "large", m: 16, n: 96, k: 32, block: 16, frac: 20, scaleA: 1e4, scaleB: 1e4},
	// |s|*2^40 up to 2^54, within FixedLimit: past the AVX2 kernel's exact
	// range of 2^51, so its tiles are redone in Go.
	{name: "beyond 2^51", m: 14, n: 40, k: 32, block: 16, frac: 40, scaleA: 30, scaleB: 30},
	{name: "strides", m: 12, n: 70, k: 40, block: 16, frac: 32, pad: 5},
	{name: "mlp-ish", m: 40, n: 784, k: 64, block: 16, frac: 32},
	{name: "nan", m: 16, n: 96, k: 32, block: 16, frac: 32, special: func(a, b []float32, lda, ldb int) {
		b[20*ldb+30] = float32(math.NaN())
	}},
	{name: "inf", m: 16, n: 96, k: 32, block: 16, frac: 32, special: func(a, b []float32, lda, ldb int) {
		a[3*lda+5] = float32(math.Inf(-1))
	}},
	{name: "inf edge rows", m: 13, n: 50, k: 20, block: 16, frac: 32, special: func(a, b []float32, lda, ldb int) {
		// 0*Inf = NaN in the padded rows of the tile: the max must still be +Inf.
		for kk := range 20 {
			for i := range 13 {
				a[kk*lda+i] = 1
			}
		}
		b[4*ldb+7] = float32(math.Inf(1))
	}},
	{name: "inf edge cols", m: 16, n: 50, k: 20, block: 16, frac: 32, special: func(a, b []float32, lda, ldb int) {
		for kk := range 20 {
			for j := range 50 {
				b[kk*ldb+j] = 1
			}
		}
		a[17*lda+9] = float32(math.Inf(-1))
	}},
	{name: "overflow", m: 8, n: 48, k: 16, block: 16, frac: 32, scaleA: 1e30, scaleB: 1e30},
}

// checkFixedResult compares a FixedGemmTN result with the reference: the
// max bit for bit (NaN with NaN), C exactly where the max is within
// FixedLimit (beyond it any C is allowed).
func checkFixedResult(t *testing.T, what string, tc fixedCase, gmax, wmax float32, got, want []int64) {
	t.Helper()
	if math.Float32bits(gmax) != math.Float32bits(wmax) && !(gmax != gmax && wmax != wmax) {
		t.Errorf("%s: max |s| %g, reference %g", what, gmax, wmax)
	}
	blocks := (tc.k + tc.block - 1) / tc.block
	if !(float64(wmax) < FixedLimit(tc.frac, blocks)) {
		return
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: element %d (row %d, col %d) is %d, reference %d", what, i, i/(tc.n+tc.pad), i%(tc.n+tc.pad), got[i], want[i])
		}
	}
}

// TestFixedGemmTNKernels checks every kernel FixedGemmTN can run (the fused
// AVX-512 one and the portable Go code) against FixedGemmTNRef, bit for
// bit, on 1 to 3 threads.
func TestFixedGemmTNKernels(t *testing.T) {
	for ci, tc := range fixedCases {
		if tc.scaleA == 0 {
			tc.scaleA = 1
		}
		if tc.scaleB == 0 {
			tc.scaleB = 1
		}
		r := rand.New(rand.NewPCG(uint64(ci), 99))
		a, lda, b, ldb, c0, ldc := tc.operands(r)
		want := append([]int64(nil), c0...)
		wmax := FixedGemmTNRef(tc.m, tc.n, tc.k, tc.block, a, lda, b, ldb, tc.frac, want, ldc)
		for _, kern := range Kernels() {
			for _, th := range []int{1, 2, 3} {
				p, err := NewPoolKernel(kern, th)
				if err != nil {
					t.Fatal(err)
				}
				p.c.minMACs = 1
				got := append([]int64(nil), c0...)
				gmax := p.FixedGemmTN(tc.m, tc.n, tc.k, tc.block, a, lda, b, ldb, tc.frac, got, ldc)
				p.Close()
				checkFixedResult(t, fmt.Sprintf("%s/kernel=%s/threads=%d", tc.name, kern, th), tc, gmax, wmax, got, want)
			}
		}
		var nilPool *Pool // runs on a temporary workspace
		got := append([]int64(nil), c0...)
		gmax := nilPool.FixedGemmTN(tc.m, tc.n, tc.k, tc.block, a, lda, b, ldb, tc.frac, got, ldc)
		checkFixedResult(t, tc.name+"/nil Pool", tc, gmax, wmax, got, want)
	}
}

// TestFixedGemmTNThreadsMLP checks that the mlp-step shapes give the same
// bits (C and max) on 1 and 2 threads, and match the reference on a slice
// of rows.
func TestFixedGemmTNThreadsMLP(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, sh := range [][3]int{{1000, 784, 64}, {1000, 1000, 48}, {1, 1000, 64}} {
		m, n, k := sh[0], sh[1], sh[2]
		a, b := randMat(r, k, m, 0.1), randMat(r, k, n, 1)
		var ref []int64
		var refMax float32
		for _, th := range []int{1, 2} {
			p := NewPool(th)
			c := make([]int64, m*n)
			mx := p.FixedGemmTN(m, n, k, 16, a, m, b, n, 32, c, n)
			p.Close()
			if ref == nil {
				ref, refMax = c, mx
				continue
			}
			if mx != refMax {
				t.Errorf("%v: threads=%d max %g, threads=1 %g", sh, th, mx, refMax)
			}
			for i := range c {
				if c[i] != ref[i] {
					t.Fatalf("%v: threads=%d element %d is %d, threads=1 %d", sh, th, i, c[i], ref[i])
				}
			}
		}
		// Reference on the first rows (A's first columns): the full
		// reference is too slow for the test.
		rows := min(m, 9)
		want := make([]int64, rows*n)
		FixedGemmTNRef(rows, n, k, 16, a, m, b, n, 32, want, n)
		for i := range want {
			if want[i] != ref[i] {
				t.Fatalf("%v: element %d is %d, reference %d", sh, i, ref[i], want[i])
			}
		}
	}
}

func TestFixedToFloatMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{0, 1, 31, 32, 33, 64, 100, 1000} {
		for _, frac := range []int{0, 20, 32, 62} {
			src := make([]int64, n)
			for i := range src {
				src[i] = int64(r.Uint64()) >> r.IntN(64)
				if i%7 == 3 {
					src[i] = -src[i]
				}
			}
			if n > 3 {
				src[1], src[2], src[3] = math.MinInt64, math.MaxInt64, 1<<25+1
			}
			dst := make([]float32, n)
			FixedToFloat(dst, src, frac)
			inv := float32(math.Ldexp(1, -frac))
			for i, q := range src {
				if want := float32(q) * inv; math.Float32bits(dst[i]) != math.Float32bits(want) {
					t.Fatalf("n=%d frac=%d: FixedToFloat(%d) = %g, want %g", n, frac, q, dst[i], want)
				}
			}
		}
	}
}

// columnSumsRef is FixedColumnSums written out element by element.
func columnSumsRef(rows, cols, block int, a []float32, lda int, frac int, c []int64) float32 {
	var mx float32
	for j := range cols {
		for r0 := 0; r0 < rows; r0 += block {
			var s float32
			for r := r0; r < min(r0+block, rows); r++ {
				s += a[r*lda+j]
			}
			mx = maxAbsNaN(mx, s)
			c[j] += int64(math.RoundToEven(float64(s) * math.Ldexp(1, frac)))
		}
	}
	return mx
}

func TestFixedColumnSumsMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	type csCase struct {
		rows, cols, block, frac, pad int
		scale                        float32
		halves                       bool
		special                      float64 // placed at row 1, last column, when nonzero
	}
	var cases []csCase
	for _, cols := range []int{1, 15, 16, 17, 64, 65, 100, 1000} {
		for _, rows := range []int{0, 1, 5, 16, 33, 256} {
			for _, block := range []int{1, 16, 32} {
				cases = append(cases, csCase{rows: rows, cols: cols, block: block, frac: 32, pad: cols % 3, scale: 1})
			}
		}
	}
	cases = append(cases,
		csCase{rows: 40, cols: 80, block: 16, frac: 0, scale: 8, halves: true},
		csCase{rows: 40, cols: 80, block: 16, frac: 40, scale: 0.01},
		csCase{rows: 40, cols: 80, block: 16, frac: 20, scale: 1e5},
		csCase{rows: 20, cols: 70, block: 16, frac: 32, scale: 1, special: math.NaN()},
		csCase{rows: 20, cols: 64, block: 16, frac: 32, scale: 1, special: math.Inf(-1)},
		csCase{rows: 20, cols: 64, block: 16, frac: 32, scale: 1e30},
	)
	for _, tc := range cases {
		lda := tc.cols + tc.pad
		a := randMat(r, max(tc.rows, 1), lda, tc.scale)
		if tc.halves {
			for i := range a {
				a[i] = float32(math.Round(float64(a[i]))) / 2
			}
		}
		if tc.special != 0 && tc.rows > 1 {
			a[lda+tc.cols-1] = float32(tc.special)
		}
		want := make([]int64, tc.cols)
		for i := range want {
			want[i] = int64(r.Uint64()>>24) - 1<<39
		}
		got := append([]int64(nil), want...)
		wmax := columnSumsRef(tc.rows, tc.cols, tc.block, a, lda, tc.frac, want)
		gmax := FixedColumnSums(tc.rows, tc.cols, tc.block, a, lda, tc.frac, got)
		if math.Float32bits(gmax) != math.Float32bits(wmax) && !(gmax != gmax && wmax != wmax) {
			t.Errorf("%+v: max %g, reference %g", tc, gmax, wmax)
		}
		if !(float64(wmax) < FixedLimit(tc.frac, (tc.rows+tc.block-1)/tc.block)) {
			continue
		}
		for j := range got {
			if got[j] != want[j] {
				t.Fatalf("%+v: column %d is %d, reference %d", tc, j, got[j], want[j])
			}
		}
	}
}

// TestFixedGemmTNSetOverwrites: FixedGemmTNSet gives the reference's block
// sums whatever c held before, on every kernel and thread count, over full
// and edge tiles and depths cut into several ranges.
func TestFixedGemmTNSetOverwrites(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	for _, kern := range Kernels() {
		for _, tc := range []struct{ m, n, k, block, threads int }{
			{8, 48, 16, 16, 1}, {17, 97, 40, 16, 2}, {33, 100, 1100, 32, 3}, {5, 3, 0, 16, 1}, {1000, 784, 64, 16, 2},
			{16, 96, 24, 16, 1}, {24, 48, 40, 8, 1}, {16, 48, 5, 3, 1},
		} {
			a, b := randMat(r, tc.k, tc.m, 1), randMat(r, tc.k, tc.n, 2)
			want := make([]int64, tc.m*tc.n)
			FixedGemmTNRef(tc.m, tc.n, tc.k, tc.block, a, tc.m, b, tc.n, 32, want, tc.n)
			got := make([]int64, len(want))
			for i := range got {
				got[i] = int64(r.Uint64())
			}
			p, err := NewPoolKernel(kern, tc.threads)
			if err != nil {
				t.Fatal(err)
			}
			p.c.minMACs = 1
			p.FixedGemmTNSet(tc.m, tc.n, tc.k, tc.block, a, tc.m, b, tc.n, 32, got, tc.n)
			p.Close()
			if !slices.Equal(got, want) {
				t.Fatalf("%s %+v: FixedGemmTNSet over garbage differs from the reference", kern, tc)
			}
		}
	}
}
