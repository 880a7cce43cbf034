//go:build !amd64

package linalg

func axpy(alpha float32, x, y []float32) { axpyGo(alpha, x, y) }
