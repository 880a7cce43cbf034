package linalg

import "golang.org/x/sys/cpu"

//go:noescape
func axpyAVX(alpha float32, x, y *float32, n int)

// haveAVX reports whether the vector axpy can run.
var haveAVX = cpu.X86.HasAVX

func axpy(alpha float32, x, y []float32) {
	if haveAVX && len(x) >= 32 {
		axpyAVX(alpha, &x[0], &y[0], len(x))
		return
	}
	axpyGo(alpha, x, y)
}
