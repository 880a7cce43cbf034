//go:build !amd64

package linalg

// fixedKernelFor returns a kernel with a nil fn: outside amd64
// FixedGemmTN uses the portable Go code.
func fixedKernelFor(k microKernel) fixedKernel { return fixedKernel{} }

// fixedToFloatFast converts nothing: FixedToFloat's Go loop does the work.
func fixedToFloatFast(dst []float32, src []int64, inv float32) int { return 0 }

// fixedColumnSumsFast handles no columns: FixedColumnSums's Go loop does
// the work.
func fixedColumnSumsFast(rows, cols, block int, a []float32, lda int, scale float32, c []int64) (int, float32) {
	return 0, 0
}
