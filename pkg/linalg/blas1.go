package linalg

import "fmt"

// Saxpy computes y += alpha*x. It panics if len(x) != len(y).
func Saxpy(alpha float32, x, y []float32) {
	if len(x) != len(y) {
		panic(fmt.Sprintf("linalg: Saxpy length mismatch: len(x) = %d, len(y) = %d", len(x), len(y)))
	}
	if alpha == 0 {
		return
	}
	axpy(alpha, x, y[:len(x)])
}

// axpyGo is the portable Saxpy; the vector version rounds identically
// (a multiply, then an add: no fused multiply-add), so that replicas on
// different CPUs apply bit-identical updates.
func axpyGo(alpha float32, x, y []float32) {
	y = y[:len(x)]
	i := 0
	for ; i+4 <= len(x); i += 4 {
		xs, ys := x[i:i+4:i+4], y[i:i+4:i+4]
		ys[0] += alpha * xs[0]
		ys[1] += alpha * xs[1]
		ys[2] += alpha * xs[2]
		ys[3] += alpha * xs[3]
	}
	for ; i < len(x); i++ {
		y[i] += alpha * x[i]
	}
}

// Sdot returns the dot product of x and y, accumulated in float32 over four
// interleaved partial sums. It panics if len(x) != len(y).
func Sdot(x, y []float32) float32 {
	if len(x) != len(y) {
		panic(fmt.Sprintf("linalg: Sdot length mismatch: len(x) = %d, len(y) = %d", len(x), len(y)))
	}
	y = y[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		xs, ys := x[i:i+4:i+4], y[i:i+4:i+4]
		s0 += xs[0] * ys[0]
		s1 += xs[1] * ys[1]
		s2 += xs[2] * ys[2]
		s3 += xs[3] * ys[3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}
