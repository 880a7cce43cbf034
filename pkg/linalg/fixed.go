package linalg

import (
	"fmt"
	"math"
)

// Fixed-point block sums: the arithmetic of exact reduction.
//
// A sum over samples in float32 depends on the order of its terms, so a
// gradient summed by 1 worker differs in its last bits from the same
// gradient summed by 2 workers and then added. Exact reduction removes the
// order: the samples are cut into fixed blocks (consecutive rows from row
// 0, block rows each, the last block possibly shorter), each block's sum is
// computed in float32 in one fixed order, that block sum s is converted to
// the integer q = RNE(s * 2^fracBits) (round to nearest, ties to even), and
// the q of all blocks are added as int64. Integer addition is exact and
// associative, so the total does not depend on which blocks are added
// first, on which thread or which worker computed them, or in which order
// they arrive.
//
// The block sum of one element is the float32 fused multiply-add chain
//
//	s = +0; for k in block, ascending: s = fma(a_k, b_k, s)
//
// which every kernel (assembly or Go) computes in exactly that order, so
// the results are bit-identical across kernels, thread counts and machines.
//
// The caller keeps q in range: every function returns the largest |s| it
// saw (NaN if any s was NaN), and the caller checks that
// |s| * 2^fracBits * blocks < 2^63 for the number of blocks added
// together (FixedLimit); then no int64 sum can overflow.

// MaxFracBits bounds the fractional bits of the fixed-point format.
const MaxFracBits = 62

// FixedLimit returns the largest block sum magnitude that is safe when at
// most blocks block sums, each converted with fracBits fractional bits,
// are added: |s| < FixedLimit for every block guarantees that no partial
// or total int64 sum overflows.
func FixedLimit(fracBits, blocks int) float64 {
	// 2^63 / blocks, one bit of margin for the rounding of s*2^fracBits.
	return math.Ldexp(1, 62-fracBits) / float64(max(blocks, 1))
}

// toFixed converts a block sum: RNE(s * 2^fracBits). The scaling is exact
// in float64 for any float32 s; s must be within FixedLimit.
func toFixed(s float32, scale float64) int64 {
	return int64(math.RoundToEven(float64(s) * scale))
}

// maxAbsNaN returns the larger of m and |s|, NaN once either is NaN.
func maxAbsNaN(m, s float32) float32 {
	a := float32(math.Abs(float64(s)))
	if a > m || a != a {
		return a
	}
	return m
}

// FixedGemmTNRef is the reference definition of FixedGemmTN, one element
// at a time. It is for tests: the kernels must match it bit for bit.
func FixedGemmTNRef(m, n, k, block int, a []float32, lda int, b []float32, ldb int, fracBits int, c []int64, ldc int) float32 {
	checkFixed(m, n, k, block, a, lda, b, ldb, fracBits, c, ldc)
	scale := math.Ldexp(1, fracBits)
	var mx float32
	for i := range m {
		for j := range n {
			for k0 := 0; k0 < k; k0 += block {
				var s float32
				for kk := k0; kk < min(k0+block, k); kk++ {
					s = FMA32(a[kk*lda+i], b[kk*ldb+j], s)
				}
				mx = maxAbsNaN(mx, s)
				c[i*ldc+j] += toFixed(s, scale)
			}
		}
	}
	return mx
}

// checkFixed panics with a message naming a bad argument of FixedGemmTN.
func checkFixed(m, n, k, block int, a []float32, lda int, b []float32, ldb int, fracBits int, c []int64, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("linalg: negative dimension (m=%d, n=%d, k=%d)", m, n, k))
	}
	if block < 1 {
		panic(fmt.Sprintf("linalg: block of %d rows", block))
	}
	if fracBits < 0 || fracBits > MaxFracBits {
		panic(fmt.Sprintf("linalg: %d fractional bits, want 0..%d", fracBits, MaxFracBits))
	}
	checkMatrix("a", k, m, a, lda)
	checkMatrix("b", k, n, b, ldb)
	if ldc < max(1, n) {
		panic(fmt.Sprintf("linalg: ldc = %d is smaller than the row width %d of c", ldc, n))
	}
	if m > 0 && n > 0 && len(c) < (m-1)*ldc+n {
		panic(fmt.Sprintf("linalg: len(c) = %d is short for %d x %d with ldc = %d", len(c), m, n, ldc))
	}
}

// FixedColumnSums adds to c[j] the fixed-point block sums of column j of
// a (rows x cols, row stride lda): for each block of block rows,
// RNE(2^fracBits * s) where s is the float32 sum of the block's values in
// ascending row order (s = +0; s += a[r][j]). It returns the largest |s|
// (NaN if any s is NaN). These are the bias gradients of a dense layer.
func FixedColumnSums(rows, cols, block int, a []float32, lda int, fracBits int, c []int64) float32 {
	if block < 1 {
		panic(fmt.Sprintf("linalg: block of %d rows", block))
	}
	checkMatrix("a", rows, cols, a, lda)
	if len(c) < cols {
		panic(fmt.Sprintf("linalg: len(c) = %d, want %d column sums", len(c), cols))
	}
	scale := math.Ldexp(1, fracBits)
	// The vector code takes a prefix of the columns (a multiple of 16);
	// each column's sums are independent, so the split changes no bits.
	j0, mx := fixedColumnSumsFast(rows, cols, block, a, lda, float32(scale), c)
	var s []float32
	if cols > j0 {
		s = make([]float32, cols-j0)
	}
	for r0 := 0; r0 < rows; r0 += block {
		clear(s)
		for r := r0; r < min(r0+block, rows); r++ {
			for j, v := range a[r*lda+j0 : r*lda+cols] {
				s[j] += v
			}
		}
		for j, v := range s {
			mx = maxAbsNaN(mx, v)
			c[j0+j] += toFixed(v, scale)
		}
	}
	return mx
}

// FixedToFloat sets dst[i] = float32(src[i]) * 2^-fracBits: the int64 is
// rounded once to float32 (to nearest, ties to even) and then scaled by a
// power of two, exact unless the result is subnormal. It panics if the
// lengths differ.
func FixedToFloat(dst []float32, src []int64, fracBits int) {
	if len(dst) != len(src) {
		panic(fmt.Sprintf("linalg: FixedToFloat length mismatch: %d and %d", len(dst), len(src)))
	}
	inv := float32(math.Ldexp(1, -fracBits))
	done := fixedToFloatFast(dst, src, inv)
	for i, q := range src[done:] {
		dst[done+i] = float32(q) * inv
	}
}

// FMA32 returns x*y+z computed with one rounding to float32 (the
// IEEE-754 fusedMultiplyAdd of binary32), as the FMA instructions of the
// assembly kernels do; Go has no float32 FMA of its own.
//
// x*y is exact in float64; x*y+z in float64 then has one rounding, and
// rounding that again to float32 is correct except when the float64 result
// sits exactly halfway between two float32 values while being inexact. In
// that case the error of the float64 sum tells which way the exact value
// lies, and the float64 result is nudged by one unit so that the second
// rounding goes that way (the method of musl's fmaf). Results in float32's
// subnormal range (below 1.2e-38) may differ from a hardware FMA in their
// last bit; a block sum that small converts to the integer 0 at any
// fracBits up to MaxFracBits.
func FMA32(x, y, z float32) float32 {
	xy := float64(x) * float64(y)
	r := xy + float64(z)
	u := math.Float64bits(r)
	e := u >> 52 & 0x7ff
	if u&0x1fffffff != 0x10000000 || e == 0x7ff || (r-xy == float64(z) && r-float64(z) == xy) {
		return float32(r)
	}
	// Halfway and inexact: err is the part of the exact sum that r lost.
	var err float64
	neg := u>>63 != 0
	if neg == (float64(z) > xy) {
		err = xy - r + float64(z)
	} else {
		err = float64(z) - r + xy
	}
	if neg == (err < 0) {
		u++
	} else {
		u--
	}
	return float32(math.Float64frombits(u))
}

// FixedGemmTN adds to c (m x n int64, row stride ldc) the fixed-point
// block sums of A^T B, where A is k x m (row stride lda) and B is k x n
// (row stride ldb): for every element and every block of block rows of
// the depth k, RNE(2^fracBits * s) with s the float32 FMA chain over the
// block (see the top of this file). It is the weight gradient dW += dt^T x
// of a dense layer, with dt as A and the layer's input as B. It returns the
// largest |s| of any block (NaN if any s was NaN); the caller compares it
// with FixedLimit. The output is split among the Pool's threads by tiles
// of C, never the depth, so the result is bit-identical for any thread
// count. With the "avx512" kernel (and AVX512DQ) it runs the fused 8 x 48
// micro-kernel, with "avx2" a 6 x 16 one, with "generic" the portable Go
// code; all give the same results.
func (p *Pool) FixedGemmTN(m, n, k, block int, a []float32, lda int, b []float32, ldb int, fracBits int, c []int64, ldc int) float32 {
	return p.fixedGemmTNAny(m, n, k, block, a, lda, b, ldb, fracBits, c, ldc, false)
}

// FixedGemmTNSet is FixedGemmTN that overwrites c with the block sums
// instead of adding them (c is not read): the first pass of a new sum,
// without a separate pass to clear c. Each tile of c is cleared just
// before the kernel adds into it, while it is in cache.
func (p *Pool) FixedGemmTNSet(m, n, k, block int, a []float32, lda int, b []float32, ldb int, fracBits int, c []int64, ldc int) float32 {
	return p.fixedGemmTNAny(m, n, k, block, a, lda, b, ldb, fracBits, c, ldc, true)
}

// clearRows sets the rows x cols top-left part of c (row stride ldc) to 0.
func clearRows(c []int64, ldc, rows, cols int) {
	for r := range rows {
		clear(c[r*ldc : r*ldc+cols])
	}
}

func (p *Pool) fixedGemmTNAny(m, n, k, block int, a []float32, lda int, b []float32, ldb int, fracBits int, c []int64, ldc int, set bool) float32 {
	checkFixed(m, n, k, block, a, lda, b, ldb, fracBits, c, ldc)
	if m == 0 || n == 0 {
		return 0
	}
	if k == 0 {
		if set {
			clearRows(c, ldc, m, n)
		}
		return 0
	}
	var g0 *Gemm
	if p != nil {
		g0 = p.c.gemms[0]
	} else if fk := fixedKernelFor(supportedKernels()[0]); fk.fn != nil {
		g0 = New()
	}
	if g0 != nil && g0.fixed.fn != nil {
		return p.fixedGemmTN(g0, m, n, k, block, a, lda, b, ldb, fracBits, c, ldc, set)
	}
	if set {
		clearRows(c, ldc, m, n) // the portable code adds
	}
	parts := 1
	if p != nil {
		parts = min(p.c.usable(), m*n*k/max(p.c.minMACs, 1), m)
	}
	if parts <= 1 {
		return fixedGemmTNGo(m, n, k, block, a, lda, b, ldb, fracBits, c, ldc)
	}
	maxes := make([]float32, parts)
	p.For(parts, 1, func(lo, hi int) {
		for part := lo; part < hi; part++ {
			i0, i1 := part*m/parts, (part+1)*m/parts
			maxes[part] = fixedGemmTNGo(i1-i0, n, k, block, a[i0:], lda, b, ldb, fracBits, c[i0*ldc:], ldc)
		}
	})
	var mx float32
	for _, v := range maxes {
		mx = maxAbsNaN(mx, v)
	}
	return mx
}

// fixedGemmTN runs the fused kernel on a grid of parts of C made of whole
// tiles (splitGrid, as Sgemm), part i on thread i with the workspace
// gemms[i] (see runPart). A nil Pool runs on g0 alone.
func (p *Pool) fixedGemmTN(g0 *Gemm, m, n, k, block int, a []float32, lda int, b []float32, ldb int, fracBits int, c []int64, ldc int, set bool) float32 {
	mr, nr := g0.fixed.mr, g0.fixed.nr
	tm, tn := 1, 1
	if p != nil {
		tm, tn = splitGrid(m, n, k, mr, nr, p.c.usable(), p.c.minMACs)
	}
	if tm*tn == 1 {
		return g0.fixedGemm(m, n, k, block, a, lda, b, ldb, fracBits, c, ldc, set)
	}
	pc := p.c
	pc.job = poolJob{
		kind: jobFixed, parts: tm * tn,
		m: m, nn: n, k: k, block: block, fracBits: fracBits, set: set,
		a: a, b: b, ci: c, lda: lda, ldb: ldb, ldc: ldc,
		tm: tm, tn: tn, mt: (m + mr - 1) / mr, nt: (n + nr - 1) / nr,
	}
	pc.run()
	var mx float32
	for _, g := range pc.gemms[:tm*tn] {
		mx = maxAbsNaN(mx, g.fixedMax)
	}
	return mx
}

// fixedGemmTNGo is the portable FixedGemmTN on one thread: for each row
// of C, the block sums of all its columns at once.
func fixedGemmTNGo(m, n, k, block int, a []float32, lda int, b []float32, ldb int, fracBits int, c []int64, ldc int) float32 {
	scale := math.Ldexp(1, fracBits)
	s := make([]float32, n)
	var mx float32
	for i := range m {
		crow := c[i*ldc : i*ldc+n]
		for k0 := 0; k0 < k; k0 += block {
			clear(s)
			for kk := k0; kk < min(k0+block, k); kk++ {
				av := a[kk*lda+i]
				for j, bv := range b[kk*ldb : kk*ldb+n] {
					s[j] = FMA32(av, bv, s[j])
				}
			}
			for j, v := range s {
				mx = maxAbsNaN(mx, v)
				crow[j] += toFixed(v, scale)
			}
		}
	}
	return mx
}
