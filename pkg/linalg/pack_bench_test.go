package linalg

import (
	"fmt"
	"testing"
)

// BenchmarkPackRows measures the transposing pack of a whole 1000 x 784
// row-major matrix (W1 in the forward pass) into 48-lane, 392-deep panels.
func BenchmarkPackRows(b *testing.B) {
	const rows, cols, w, kc = 1000, 784, 48, 392
	src := make([]float32, rows*cols)
	dst := make([]float32, w*kc)
	for _, fast := range []bool{true, false} {
		b.Run(fmt.Sprintf("fast=%v", fast), func(b *testing.B) {
			for b.Loop() {
				for p0 := 0; p0 < cols; p0 += kc {
					for r := 0; r+w <= rows; r += w {
						s := src[r*cols+p0:]
						if !fast || !packRowsFast(dst, s, cols, w, w, kc) {
							packRowsGo(dst, s, cols, w, w, kc)
						}
					}
				}
			}
			b.ReportMetric(float64(rows*cols)*float64(b.N)/float64(b.Elapsed().Nanoseconds()), "Gelem/s")
		})
	}
}
