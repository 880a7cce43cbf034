// Package linalg provides the dense float32 kernels the MLP engine needs: a
// BLIS/GotoBLAS-style single-precision GEMM (Gemm.Sgemm, row-major, all four
// transpose combinations, alpha/beta), its multi-threaded form Pool.Sgemm,
// the fixed-point block sums of exact reduction (Pool.FixedGemmTN,
// FixedColumnSums, FixedToFloat; see fixed.go), and the level-1 helpers
// Saxpy and Sdot.
//
// # Route: hand-written Go assembly, no cgo
//
// The micro-kernels and the packing routines are Go assembly (amd64), driven
// by a blocked loop nest in plain Go. There is no cgo and no system BLAS:
// the binaries stay static (CGO_ENABLED=0) for FROM-scratch container
// images, a fresh machine needs nothing installed, and everything builds
// with a plain `go build` (no GOEXPERIMENT such as simd). Pure-Go BLAS
// (gonum) reaches about 4 GFLOP/s on this class of CPU; single-thread
// PyTorch (OpenBLAS/oneDNN) reaches about 50, which the engine must match.
//
// # Micro-kernels
//
// The kernel is chosen at New from golang.org/x/sys/cpu, fastest first
// (Kernels lists what the CPU supports; NewKernel forces one):
//
//   - "avx512": 8 x 48 tile in zmm registers (24 accumulators, 3 vector
//     loads of B and 8 broadcasts of A per 24 FMAs). Requires AVX512F.
//   - "avx2": 6 x 16 tile in ymm registers (the BLIS Haswell shape, 12
//     accumulators). Requires AVX2 and FMA.
//   - "generic": 4 x 4 tile in pure Go, for other CPUs and architectures.
//
// On the AMD Zen 4 development machine both SIMD kernels run at about 100
// GFLOP/s on cache-resident panels (Zen 4 executes a 512-bit FMA as two
// 256-bit halves, so the peak is the same); the AVX-512 kernel wins in the
// full GEMM because its 8 x 48 tile needs fewer loads per FMA and fits the
// engine's shapes (batch 64 = 8 tiles, 1000 columns = 21 tiles with 8 of
// padding). See BenchmarkSgemm and BenchmarkMicroKernel.
//
// # Blocking and packing
//
// Loop order, outermost first: nc columns of op(B); kc depth steps; mc rows
// of op(A), packed into mr-high micro-panels; nr-wide micro-panels of op(B),
// each packed just before its first use; mr-high micro-panels of op(A); the
// micro-kernel. Packing absorbs the transposes, so one micro-kernel serves
// all four combinations: op(A) = A and op(B) = B^T are packed by an 8 x 8
// in-register transpose (AVX), op(A) = A^T and op(B) = B by vector copies.
// Packed panels are zero-padded to full tiles; a partial tile at the bottom
// or right edge is computed into a scratch tile and merged, so no kernel
// reads or writes outside the caller's slices.
//
// Block sizes (the CPU has 32 KiB L1d and 1 MiB L2 per core): kc <= 512,
// the packed mc x kc block of op(A) <= 256 KiB (L2), the packed kc x nc
// block of op(B) <= 1 MiB. Each dimension is split into equal blocks (k =
// 784 becomes two blocks of 392) rounded up to the tile size.
//
// # Threads
//
// A Pool (NewPool(threads)) runs Sgemm on a fixed set of threads, BLIS
// style: the caller plus threads-1 persistent workers, each with its own
// Gemm workspace. It splits only the output, the M and N loops, into a
// grid of parts made of whole mr x nr tiles; the K sum is never split.
// Every element of C is therefore produced by the same micro-kernel calls
// over the same kc blocks as on one thread, and the result is bit-identical
// for any thread count. (The parts must start on tile boundaries: a full
// tile applies beta with a fused multiply-add inside the kernel while a
// partial edge tile is merged unfused, so moving the tile grid would change
// bits.) The split depends only on the shape and the thread count, and
// products under about a million multiply-adds per thread are not split.
// Pool.For splits elementwise loops into contiguous ranges on the same
// threads. A one-thread Pool has no workers and costs a plain Gemm call.
//
// # Fixed-point kernel (exact reduction)
//
// Pool.FixedGemmTN (dW += dt^T x as int64 block sums, see fixed.go) has
// its own fused AVX-512 micro-kernel (requires AVX512F and AVX512DQ, used
// by Pools on the "avx512" kernel; otherwise the portable Go code, with
// the same bits). It keeps the 8 x 48 tile and the register layout of the
// float kernel (24 zmm accumulators, 3 loads of B and 8 broadcasts of A per
// step), since the depth loop of a block is the same FMA chain; what
// differs is the end of every block (16 or 32 steps): the accumulators'
// |s| go into a running max (VPMAXUD on sign-cleared bit patterns, which
// orders floats and puts any NaN on top), 2^fracBits is added to their
// exponents, they are spilled to a scratch in the frame, and the next
// block's FMAs are interleaved with the conversion of the spilled rows
// (VCVTPS2QQ, round to nearest even) and their addition into the int64 C
// tile, which stays in L1 because one call runs all the blocks of a
// column of tiles. Converting at each block's end in one burst left the
// FMA pipes idle a quarter of the time at block 16; pipelined, the
// kernel runs at about 0.83 (block 16) and 0.90 (block 32) of the float
// kernel, FixedGemmTN at about 0.8 and 0.9 of Sgemm on the mlp shapes.
// Edge tiles go through an int64 scratch tile; as the zero padding can
// turn an Inf input into a NaN (0*Inf), an edge tile whose max is not
// finite has its max recomputed in Go over its valid part. The threads
// split C into whole tiles as for Sgemm, never the depth.
// Pools on the "avx2" kernel get a 6 x 16 AVX2 fixed-point kernel: AVX2
// cannot convert floats to int64, so it rounds in float64 by adding
// 1.5*2^52, exact for |s*2^fracBits| < 2^51; every tile goes through the
// scratch tile and one beyond that range is redone in Go (about 0.5-0.65
// of the AVX2 Sgemm). "generic" Pools use the portable Go code.
// FixedColumnSums and FixedToFloat have AVX-512 loops (VADDPS in row
// order; VCVTQQ2PS) that give the same bits as their Go loops.
//
// # Concurrency and allocation
//
// A Gemm owns its packing buffers: it is not safe for concurrent use, and
// after the first call at a given size it does not allocate. The same holds
// for a Pool's Sgemm (one call at a time; no allocation once grown).
package linalg
