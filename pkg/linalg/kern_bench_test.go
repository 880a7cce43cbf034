package linalg

import (
	"fmt"
	"testing"
)

// BenchmarkMicroKernel measures each micro-kernel alone on L1/L2-resident
// packed panels: the ceiling the blocked driver can approach.
func BenchmarkMicroKernel(b *testing.B) {
	for _, k := range supportedKernels() {
		for _, kc := range []int{64, 256, 512} {
			b.Run(fmt.Sprintf("kernel=%s/kc=%d", k.name, kc), func(b *testing.B) {
				ap := make([]float32, k.mr*kc)
				bp := make([]float32, k.nr*kc)
				c := make([]float32, k.mr*k.nr)
				for b.Loop() {
					k.fn(kc, &ap[0], &bp[0], &c[0], k.nr, 1, 1)
				}
				flops := 2 * float64(k.mr*k.nr*kc) * float64(b.N)
				b.ReportMetric(flops/float64(b.Elapsed().Nanoseconds()), "GFLOP/s")
			})
		}
	}
}
