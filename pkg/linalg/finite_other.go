//go:build !amd64

package linalg

// AllFinite reports whether every value of x is finite (neither NaN nor an
// infinity).
func AllFinite(x []float32) bool { return allFiniteGo(x) }
