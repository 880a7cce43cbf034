package linalg

// kernelFunc is the micro-kernel contract shared by the assembly and Go
// kernels: for one mr x nr tile it computes
//
//	C = alpha * Apanel * Bpanel + beta * C
//
// where a points to a packed A micro-panel (kc groups of mr floats), b to a
// packed B micro-panel (kc groups of nr floats) and c to the tile's top-left
// element in a row-major matrix with row stride ldc elements. beta == 0 (or
// -0) means C is written without being read. kc must be at least 1.
type kernelFunc func(kc int, a, b, c *float32, ldc int, alpha, beta float32)

// microKernel describes one register-blocked micro-kernel.
type microKernel struct {
	name string     // "avx512", "avx2" or "generic"
	mr   int        // rows of the C tile (broadcast side, op(A))
	nr   int        // columns of the C tile (vector side, op(B))
	fn   kernelFunc // the kernel itself
}

// Kernel names reported by (*Gemm).Kernel.
const (
	KernelAVX512  = "avx512"
	KernelAVX2    = "avx2"
	KernelGeneric = "generic"
)

// genericKernel is the portable pure-Go micro-kernel (4 x 4 tile).
var genericKernel = microKernel{name: KernelGeneric, mr: 4, nr: 4, fn: kernel4x4Go}
