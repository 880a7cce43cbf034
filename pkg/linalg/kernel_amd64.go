//go:build amd64

package linalg

import "golang.org/x/sys/cpu"

// kernel8x48AVX512 is the AVX-512 micro-kernel (8 x 48 tile, 24 zmm
// accumulators). See kernelFunc for the contract. Requires AVX512F.
//
//go:noescape
func kernel8x48AVX512(kc int, a, b, c *float32, ldc int, alpha, beta float32)

// kernel6x16AVX2 is the AVX2/FMA micro-kernel (6 x 16 tile, 12 ymm
// accumulators). See kernelFunc for the contract. Requires AVX2 and FMA.
//
//go:noescape
func kernel6x16AVX2(kc int, a, b, c *float32, ldc int, alpha, beta float32)

var (
	avx512Kernel = microKernel{name: KernelAVX512, mr: 8, nr: 48, fn: kernel8x48AVX512}
	avx2Kernel   = microKernel{name: KernelAVX2, mr: 6, nr: 16, fn: kernel6x16AVX2}
)

// supportedKernels lists the micro-kernels this CPU can run, fastest first.
func supportedKernels() []microKernel {
	var ks []microKernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, avx512Kernel)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, avx2Kernel)
	}
	return append(ks, genericKernel)
}
