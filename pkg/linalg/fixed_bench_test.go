package linalg

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkFixedGemmTN measures the weight-gradient shapes of the
// 784-1000-1000-1 MLP (dW += dt^T x, m x n over k samples) as FixedGemmTN
// with block 16 and 32, beside Pool.Sgemm(true, false, ...) of the same
// shape (op=sgemm), on 1 and 2 threads. GFLOP/s counts 2*m*n*k for both.
func BenchmarkFixedGemmTN(b *testing.B) {
	for _, sh := range [][2]int{{1000, 1000}, {1000, 784}} {
		m, n := sh[0], sh[1]
		for _, k := range []int{64, 128, 256} {
			r := rand.New(rand.NewPCG(1, uint64(k)))
			a, bm := randMat(r, k, m, 0.1), randMat(r, k, n, 1)
			for _, th := range []int{1, 2} {
				p := NewPool(th)
				flops := 2 * float64(m) * float64(n) * float64(k)
				b.Run(fmt.Sprintf("m=%d/n=%d/k=%d/op=sgemm/threads=%d", m, n, k, th), func(b *testing.B) {
					c := make([]float32, m*n)
					p.Sgemm(true, false, m, n, k, 1, a, m, bm, n, 1, c, n)
					for b.Loop() {
						p.Sgemm(true, false, m, n, k, 1, a, m, bm, n, 1, c, n)
					}
					b.ReportMetric(flops*float64(b.N)/float64(b.Elapsed().Nanoseconds()), "GFLOP/s")
				})
				for _, block := range []int{16, 32} {
					b.Run(fmt.Sprintf("m=%d/n=%d/k=%d/op=fixed/block=%d/threads=%d", m, n, k, block, th), func(b *testing.B) {
						c := make([]int64, m*n)
						p.FixedGemmTN(m, n, k, block, a, m, bm, n, 32, c, n)
						for b.Loop() {
							p.FixedGemmTN(m, n, k, block, a, m, bm, n, 32, c, n)
						}
						b.ReportMetric(flops*float64(b.N)/float64(b.Elapsed().Nanoseconds()), "GFLOP/s")
					})
				}
				p.Close()
			}
		}
	}
}

// BenchmarkFixedMicroKernel measures the fused fixed-point kernel alone on
// cache-resident packed panels (the ceiling of FixedGemmTN), beside the
// float GEMM kernel of the same tile at the same depth.
func BenchmarkFixedMicroKernel(b *testing.B) {
	fk := fixedKernelFor(supportedKernels()[0])
	if fk.fn == nil {
		b.Skip("no fused fixed-point kernel on this CPU")
	}
	for _, kc := range []int{64, 256} {
		ap := randMat(rand.New(rand.NewPCG(1, 2)), kc, fk.mr, 1)
		bp := randMat(rand.New(rand.NewPCG(3, 4)), kc, fk.nr, 1)
		flops := 2 * float64(fk.mr*fk.nr*kc)
		b.Run(fmt.Sprintf("kc=%d/op=sgemm", kc), func(b *testing.B) {
			kern := supportedKernels()[0] // the float kernel of the same tile
			c := make([]float32, fk.mr*fk.nr)
			for b.Loop() {
				kern.fn(kc, &ap[0], &bp[0], &c[0], fk.nr, 1, 1)
			}
			b.ReportMetric(flops*float64(b.N)/float64(b.Elapsed().Nanoseconds()), "GFLOP/s")
		})
		for _, block := range []int{16, 32} {
			b.Run(fmt.Sprintf("kc=%d/op=fixed/block=%d", kc, block), func(b *testing.B) {
				c := make([]int64, fk.mr*fk.nr)
				for b.Loop() {
					fk.fn(kc, block, 1, &ap[0], &bp[0], &c[0], fk.nr, 0, 1<<20)
				}
				b.ReportMetric(flops*float64(b.N)/float64(b.Elapsed().Nanoseconds()), "GFLOP/s")
			})
		}
	}
}
