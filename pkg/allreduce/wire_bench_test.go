package allreduce

import (
	"fmt"
	"testing"
)

// BenchmarkWireCodec: the per-element cost of the bf16 wire's conversions
// against the f32 wire's add (ns per element; a 7.1 MB mnist12 buffer is
// 1.79M elements), and the int64 add over the same 256 KiB of payload
// (half the elements; compare MB/s), from aligned and unaligned payloads.
func BenchmarkWireCodec(b *testing.B) {
	const n = 1 << 16
	src := make([]float32, n)
	for i := range src {
		src[i] = float32(i%1000) * 1.37e-3
	}
	res := make([]float32, n)
	wire := make([]byte, 8*n+1)
	dst := make([]float32, n)
	dst64 := make([]int64, n/2)
	off := wire[1 : 4*n+1] // received pieces start anywhere
	for _, c := range []struct {
		name string
		f    func()
	}{
		{"encode=bf16", func() { encodeBF16(wire, src, res, false) }},
		{"add=bf16", func() { addBF16(dst, wire[:2*n]) }},
		{"copy=bf16", func() { copyBF16(dst, wire[:2*n]) }},
		{"add=f32", func() { addLE(dst, wire[:4*n]) }},
		{"add=f32-unaligned", func() { addLE(dst, off) }},
		{"add=int64", func() { addInt64LE(dst64, wire[:4*n]) }},
		{"add=int64-unaligned", func() { addInt64LE(dst64, off) }},
	} {
		b.Run(fmt.Sprint(c.name), func(b *testing.B) {
			b.SetBytes(4 * n)
			for b.Loop() {
				c.f()
			}
		})
	}
}
