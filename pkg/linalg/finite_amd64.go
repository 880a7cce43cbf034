package linalg

import "golang.org/x/sys/cpu"

//go:noescape
func nonFiniteAVX2(x *float32, n int) bool

// haveAVX2 reports whether the vector finiteness check can run.
var haveAVX2 = cpu.X86.HasAVX2

// AllFinite reports whether every value of x is finite (neither NaN nor an
// infinity).
func AllFinite(x []float32) bool {
	n := len(x) &^ 31
	if haveAVX2 && n > 0 {
		if nonFiniteAVX2(&x[0], n) {
			return false
		}
		return allFiniteGo(x[n:])
	}
	return allFiniteGo(x)
}
