//go:build amd64

package linalg

import "golang.org/x/sys/cpu"

// fixedKernel8x48AVX512 is the fused fixed-point micro-kernel (8 x 48 tile
// of int64 C, 24 zmm accumulators). See fixedKernelFunc for the contract.
// Requires AVX512F and AVX512DQ (VCVTPS2QQ).
//
//go:noescape
func fixedKernel8x48AVX512(k, block, tiles int, a, b *float32, c *int64, ldc, set int, scale float32) float32

// fixedKernel6x16AVX2 is the fixed-point micro-kernel for AVX2 and FMA
// (6 x 16 tile, 12 ymm accumulators). Its conversion is exact only for
// |s*scale| < 2^51 (see fixedKernel.narrow).
//
//go:noescape
func fixedKernel6x16AVX2(k, block, tiles int, a, b *float32, c *int64, ldc int, scale float32) float32

// fixedToFloatAVX512 sets dst[i] = float32(src[i]) * inv for i < n, n a
// multiple of 32. Requires AVX512F and AVX512DQ (VCVTQQ2PS).
//
//go:noescape
func fixedToFloatAVX512(dst *float32, src *int64, n int, inv float32)

// fixedColumnSumsAVX512 is FixedColumnSums on the first cols columns, cols
// a multiple of 16, rows >= 1. Requires AVX512F and AVX512DQ.
//
//go:noescape
func fixedColumnSumsAVX512(rows, cols, block int, a *float32, lda int, c *int64, scale float32) float32

// haveAVX512DQ reports whether the AVX-512 fixed-point kernels can run.
var haveAVX512DQ = cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ

var (
	fixedAVX512Kernel = fixedKernel{name: KernelAVX512, mr: 8, nr: 48, fn: fixedKernel8x48AVX512}
	fixedAVX2Kernel   = fixedKernel{name: KernelAVX2, mr: 6, nr: 16, fn: func(k, block, tiles int, a, b *float32, c *int64, ldc, _ int, scale float32) float32 {
		return fixedKernel6x16AVX2(k, block, tiles, a, b, c, ldc, scale) // narrow: only ever called on a zeroed scratch tile
	}, narrow: true}
)

// fixedKernelFor returns the fused fixed-point kernel that goes with the
// GEMM micro-kernel k, or one with a nil fn when FixedGemmTN must use the
// portable Go code (a "generic" Gemm). An "avx512" Gemm on a CPU without
// AVX512DQ gets the AVX2 kernel.
func fixedKernelFor(k microKernel) fixedKernel {
	switch {
	case k.name == KernelAVX512 && haveAVX512DQ:
		return fixedAVX512Kernel
	case k.name != KernelGeneric && cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return fixedAVX2Kernel
	}
	return fixedKernel{}
}

// fixedToFloatFast converts the longest prefix of src it can (a multiple
// of 32 elements) into dst and returns its length.
func fixedToFloatFast(dst []float32, src []int64, inv float32) int {
	n := len(src) &^ 31
	if !haveAVX512DQ || n == 0 {
		return 0
	}
	_ = dst[n-1]
	fixedToFloatAVX512(&dst[0], &src[0], n, inv)
	return n
}

// fixedColumnSumsFast runs FixedColumnSums on the longest prefix of the
// columns it can (a multiple of 16) and returns that prefix's length and
// the max |s| over it.
func fixedColumnSumsFast(rows, cols, block int, a []float32, lda int, scale float32, c []int64) (int, float32) {
	n := cols &^ 15
	if !haveAVX512DQ || n == 0 || rows == 0 {
		return 0, 0
	}
	_ = a[(rows-1)*lda+n-1]
	_ = c[n-1]
	return n, fixedColumnSumsAVX512(rows, n, block, &a[0], lda, &c[0], scale)
}
