package allreduce

import (
	"fmt"
	"testing"
)

// BenchmarkWireCodec: the per-element cost of the bf16 wire's conversions
// against the f32 wire's add (ns per element; a 7.1 MB mnist12 buffer is
// 1.79M elements).
func BenchmarkWireCodec(b *testing.B) {
	const n = 1 << 16
	src := make([]float32, n)
	for i := range src {
		src[i] = float32(i%1000) * 1.37e-3
	}
	res := make([]float32, n)
	wire := make([]byte, 4*n)
	dst := make([]float32, n)
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"encode=bf16", func() { encodeBF16(wire, src, res, false) }},
		{"add=bf16", func() { addBF16(dst, wire[:2*n]) }},
		{"copy=bf16", func() { copyBF16(dst, wire[:2*n]) }},
		{"add=f32", func() { addLE(dst, wire) }},
	} {
		b.Run(fmt.Sprint(c.name), func(b *testing.B) {
			b.SetBytes(4 * n)
			for b.Loop() {
				c.f()
			}
		})
	}
}
