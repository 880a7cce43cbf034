//go:build amd64

package allreduce

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

//go:noescape
func encodeBF16AVX2(dst *byte, src, res *float32, n int, own bool)

//go:noescape
func addBF16AVX2(dst *float32, src *byte, n int)

//go:noescape
func copyBF16AVX2(dst *float32, src *byte, n int)

// encodeBF16Vec encodes a prefix of src (a multiple of 16 elements) with
// AVX2 and returns its length (0 without AVX2); see encodeBF16.
func encodeBF16Vec(dst []byte, src, residual []float32, own bool) int {
	n := len(src) &^ 15
	if n == 0 || !cpu.X86.HasAVX2 {
		return 0
	}
	_ = dst[2*n-1]
	var res *float32
	if residual != nil {
		_ = residual[n-1]
		res = unsafe.SliceData(residual)
	}
	encodeBF16AVX2(unsafe.SliceData(dst), unsafe.SliceData(src), res, n, own)
	return n
}

// addBF16Vec and copyBF16Vec handle a prefix of dst (a multiple of 8
// elements) with AVX2 and return its length (0 without AVX2).
func addBF16Vec(dst []float32, src []byte) int {
	n := len(dst) &^ 7
	if n == 0 || !cpu.X86.HasAVX2 {
		return 0
	}
	_ = src[2*n-1]
	addBF16AVX2(unsafe.SliceData(dst), unsafe.SliceData(src), n)
	return n
}

func copyBF16Vec(dst []float32, src []byte) int {
	n := len(dst) &^ 7
	if n == 0 || !cpu.X86.HasAVX2 {
		return 0
	}
	_ = src[2*n-1]
	copyBF16AVX2(unsafe.SliceData(dst), unsafe.SliceData(src), n)
	return n
}
