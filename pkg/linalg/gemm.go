package linalg

import (
	"fmt"
	"unsafe"
)

// Default cache-blocking budgets. The Zen 4 core this was tuned on has a
// 32 KiB L1d and a 1 MiB L2 per core and a shared 32 MiB L3.
const (
	// defaultKC bounds the depth of one packed block. A kc x nr B micro-panel
	// (at most 512*48*4 = 96 KiB) then streams from L2 at a rate the kernel
	// easily absorbs, and C tiles are updated once per kc rank-1 updates.
	defaultKC = 512
	// defaultABytes bounds the packed mc x kc block of op(A), which stays in
	// L2 while every B micro-panel of the block row passes by it.
	defaultABytes = 256 << 10
	// defaultBBytes bounds the packed kc x nc block of op(B); it is packed
	// panel by panel just before first use and revisited for later mc blocks.
	defaultBBytes = 1 << 20
	// cacheLine is the alignment of the packing buffers, so that the
	// kernels' vector loads of packed B never straddle two cache lines.
	cacheLine = 64
)

// Gemm is a single-precision matrix multiplier with reusable packing
// workspace. After the first call for a given problem size it allocates
// nothing. A Gemm is not safe for concurrent use; the zero value is not
// usable, create one with New or NewKernel.
type Gemm struct {
	kern microKernel

	kcMax  int // maximum kc (depth of a packed block)
	aBytes int // byte budget of the packed op(A) block
	bBytes int // byte budget of the packed op(B) block

	abuf []float32 // packed op(A) block, cache-line aligned
	bbuf []float32 // packed op(B) block, cache-line aligned
	tile []float32 // scratch C tile for partial tiles at the edges

	fixed    fixedKernel // fused fixed-point kernel (fn nil: none)
	itile    []int64     // scratch int64 C tile of FixedGemmTN's partial tiles
	fixedMax float32     // FixedGemmTN's max |s| of this thread's part
}

// New returns a Gemm that uses the fastest micro-kernel the CPU supports.
func New() *Gemm {
	return newGemm(supportedKernels()[0])
}

// Kernels lists the micro-kernels usable on this CPU, fastest first, e.g.
// ["avx512" "avx2" "generic"]. The last entry is always "generic".
func Kernels() []string {
	ks := supportedKernels()
	names := make([]string, len(ks))
	for i, k := range ks {
		names[i] = k.name
	}
	return names
}

// NewKernel returns a Gemm that uses the named micro-kernel (one of
// Kernels()). It returns an error if the kernel is unknown or the CPU does
// not support it. Meant for tests and benchmarks; production code uses New.
func NewKernel(name string) (*Gemm, error) {
	for _, k := range supportedKernels() {
		if k.name == name {
			return newGemm(k), nil
		}
	}
	return nil, fmt.Errorf("linalg: micro-kernel %q is not available on this CPU (have %v)", name, Kernels())
}

func newGemm(k microKernel) *Gemm {
	return &Gemm{
		kern:   k,
		kcMax:  defaultKC,
		aBytes: defaultABytes,
		bBytes: defaultBBytes,
		tile:   make([]float32, k.mr*k.nr),
		fixed:  fixedKernelFor(k),
	}
}

// Kernel reports which micro-kernel is in use: "avx512", "avx2" or "generic".
func (g *Gemm) Kernel() string {
	return g.kern.name
}

// Sgemm computes C = alpha*op(A)*op(B) + beta*C for row-major matrices.
// op(A) is m x k (A itself is k x m when transA), op(B) is k x n (B is n x k
// when transB), C is m x n. lda, ldb and ldc are row strides in elements.
// beta == 0 means C is overwritten without being read, so NaNs in C do not
// propagate. Sgemm panics if a dimension is negative, a stride is smaller
// than its row width or a slice is too short: those are programming errors.
func (g *Gemm) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkSgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	g.gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// checkSgemm panics with a message naming the offending argument.
func checkSgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("linalg: negative dimension (m=%d, n=%d, k=%d)", m, n, k))
	}
	// Stored shapes: A is m x k (k x m if transA), B is k x n (n x k if transB).
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	checkMatrix("a", ar, ac, a, lda)
	checkMatrix("b", br, bc, b, ldb)
	checkMatrix("c", m, n, c, ldc)
}

// checkMatrix checks that s can hold a rows x cols row-major matrix with row
// stride ld.
func checkMatrix(name string, rows, cols int, s []float32, ld int) {
	if ld < max(1, cols) {
		panic(fmt.Sprintf("linalg: ld%s = %d is smaller than the row width %d of %s (%d x %d)",
			name, ld, max(1, cols), name, rows, cols))
	}
	if rows == 0 || cols == 0 {
		return
	}
	if need := (rows-1)*ld + cols; len(s) < need {
		panic(fmt.Sprintf("linalg: len(%s) = %d is short: a %d x %d matrix with ld%s = %d needs %d elements",
			name, len(s), rows, cols, name, ld, need))
	}
}

// scaleC sets C = beta*C (C = 0 when beta == 0, ignoring NaNs in C).
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		switch beta {
		case 0:
			clear(row)
		case 1:
		default:
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

// blockSizes splits the problem into cache blocks. Blocks are split evenly
// (a 784-deep product becomes two 392-deep blocks, not 512 + 272) so that no
// block is much thinner than the others.
func (g *Gemm) blockSizes(m, n, k int) (mcb, ncb, kcb int) {
	mr, nr := g.kern.mr, g.kern.nr
	kcb = evenSplit(k, g.kcMax, 1)
	mcMax := max(mr, g.aBytes/(4*kcb)/mr*mr)
	mcb = evenSplit(m, mcMax, mr)
	ncMax := max(nr, g.bBytes/(4*kcb)/nr*nr)
	ncb = evenSplit(n, ncMax, nr)
	return mcb, ncb, kcb
}

// evenSplit returns the block length for covering total in the fewest blocks
// of at most maxBlock, with lengths as equal as possible and rounded up to a
// multiple of unit (maxBlock is a multiple of unit).
func evenSplit(total, maxBlock, unit int) int {
	if total <= maxBlock {
		return total
	}
	nb := (total + maxBlock - 1) / maxBlock
	bl := (total + nb - 1) / nb
	bl = (bl + unit - 1) / unit * unit
	return min(bl, maxBlock)
}

// alignedBuf returns buf if it holds at least n floats from a cache-line
// boundary, else a new cache-line aligned slice of n floats.
func alignedBuf(buf []float32, n int) []float32 {
	if cap(buf) >= n {
		return buf[:n]
	}
	const pad = cacheLine / 4
	raw := make([]float32, n+pad)
	off := 0
	if mis := uintptr(unsafe.Pointer(&raw[0])) % cacheLine; mis != 0 {
		off = int(cacheLine-mis) / 4
	}
	return raw[off : off+n : off+n]
}

// gemm is the blocked driver (GotoBLAS/BLIS loop order): column blocks of
// op(B) (nc), depth blocks (kc), row blocks of op(A) (mc, packed once per
// block into L2), then nr-wide B micro-panels (packed on first use) and
// mr-high A micro-panels fed to the micro-kernel.
func (g *Gemm) gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	kern := g.kern
	mr, nr := kern.mr, kern.nr
	mcb, ncb, kcb := g.blockSizes(m, n, k)
	g.abuf = alignedBuf(g.abuf, roundUp(mcb, mr)*kcb)
	g.bbuf = alignedBuf(g.bbuf, roundUp(ncb, nr)*kcb)
	tile := g.tile

	for jc := 0; jc < n; jc += ncb {
		nc := min(ncb, n-jc)
		for pc := 0; pc < k; pc += kcb {
			kc := min(kcb, k-pc)
			bet := beta
			if pc > 0 {
				bet = 1 // later depth blocks accumulate onto the first
			}
			for ic := 0; ic < m; ic += mcb {
				mc := min(mcb, m-ic)
				// Pack the mc x kc block of op(A) into mr-high micro-panels.
				for ir := 0; ir < mc; ir += mr {
					dst := g.abuf[(ir/mr)*kc*mr : (ir/mr+1)*kc*mr]
					rows := min(mr, mc-ir)
					if transA {
						packCols(dst, a[pc*lda+ic+ir:], lda, rows, mr, kc)
					} else {
						packRows(dst, a[(ic+ir)*lda+pc:], lda, rows, mr, kc)
					}
				}
				for jr := 0; jr < nc; jr += nr {
					cols := min(nr, nc-jr)
					bp := g.bbuf[(jr/nr)*kc*nr : (jr/nr+1)*kc*nr]
					if ic == 0 {
						// Pack this kc x nr micro-panel of op(B) just before
						// its first use, while it is hot in cache.
						if transB {
							packRows(bp, b[(jc+jr)*ldb+pc:], ldb, cols, nr, kc)
						} else {
							packCols(bp, b[pc*ldb+jc+jr:], ldb, cols, nr, kc)
						}
					}
					for ir := 0; ir < mc; ir += mr {
						rows := min(mr, mc-ir)
						ap := g.abuf[(ir/mr)*kc*mr:]
						ci := (ic+ir)*ldc + jc + jr
						if rows == mr && cols == nr {
							kern.fn(kc, &ap[0], &bp[0], &c[ci], ldc, alpha, bet)
							continue
						}
						// Partial tile: compute a full tile into scratch, then
						// merge only the valid part, so nothing outside C is
						// read or written.
						kern.fn(kc, &ap[0], &bp[0], &tile[0], nr, alpha, 0)
						mergeTile(c[ci:], ldc, tile, nr, rows, cols, bet)
					}
				}
			}
		}
	}
}

// mergeTile sets C = T + beta*C on the rows x cols top-left part of C.
func mergeTile(c []float32, ldc int, t []float32, ldt, rows, cols int, beta float32) {
	for r := range rows {
		cr := c[r*ldc : r*ldc+cols]
		tr := t[r*ldt : r*ldt+cols]
		if beta == 0 {
			copy(cr, tr)
			continue
		}
		for j := range cr {
			cr[j] = tr[j] + beta*cr[j]
		}
	}
}

func roundUp(x, unit int) int {
	return (x + unit - 1) / unit * unit
}
