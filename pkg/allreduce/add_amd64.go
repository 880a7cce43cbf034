//go:build amd64

package allreduce

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// addAVX2 adds the n little-endian float32s at src (any alignment) into the n
// float32s at dst; n must be a multiple of 8. Requires AVX2.
//
//go:noescape
func addAVX2(dst *float32, src *byte, n int)

// addVec adds a prefix of src (4*len(dst) bytes, little-endian float32, any
// alignment) into dst with vector instructions and returns how many elements
// it handled: a multiple of 8, or 0 where AVX2 is missing.
func addVec(dst []float32, src []byte) int {
	n := len(dst) &^ 7
	if n == 0 || !cpu.X86.HasAVX2 {
		return 0
	}
	_ = src[4*n-1]
	addAVX2(unsafe.SliceData(dst), unsafe.SliceData(src), n)
	return n
}

// addInt64AVX2 adds the n little-endian int64s at src (any alignment) into
// the n int64s at dst, wrapping; n must be a multiple of 4. Requires AVX2.
//
//go:noescape
func addInt64AVX2(dst *int64, src *byte, n int)

// addInt64Vec adds a prefix of src (8*len(dst) bytes, little-endian int64,
// any alignment) into dst with vector instructions and returns how many
// elements it handled: a multiple of 4, or 0 where AVX2 is missing.
func addInt64Vec(dst []int64, src []byte) int {
	n := len(dst) &^ 3
	if n == 0 || !cpu.X86.HasAVX2 {
		return 0
	}
	_ = src[8*n-1]
	addInt64AVX2(unsafe.SliceData(dst), unsafe.SliceData(src), n)
	return n
}
