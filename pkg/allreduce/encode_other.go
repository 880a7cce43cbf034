//go:build !(386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm)

package allreduce

import (
	"encoding/binary"
	"math"
)

// Portable fallback for big-endian hosts: encode into a reused scratch buffer.

// encode returns the little-endian bytes of src and the scratch buffer to reuse next time.
func encode(scratch []byte, src []float32) (data, _ []byte) {
	if cap(scratch) < 4*len(src) {
		scratch = make([]byte, 4*len(src))
	}
	data = scratch[:4*len(src)]
	for i, v := range src {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
	}
	return data, scratch
}

// addLE adds the little-endian float32s in src (len(src) == 4*len(dst)) into dst.
func addLE(dst []float32, src []byte) {
	src = src[:4*len(dst)]
	for i := range dst {
		dst[i] += math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

// copyLE copies the little-endian float32s in src (len(src) == 4*len(dst)) into dst.
func copyLE(dst []float32, src []byte) {
	src = src[:4*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

// encodeInt64 returns the little-endian bytes of src and the scratch buffer to reuse next time.
func encodeInt64(scratch []byte, src []int64) (data, _ []byte) {
	if cap(scratch) < 8*len(src) {
		scratch = make([]byte, 8*len(src))
	}
	data = scratch[:8*len(src)]
	for i, v := range src {
		binary.LittleEndian.PutUint64(data[8*i:], uint64(v))
	}
	return data, scratch
}

// addInt64LE adds the little-endian int64s in src (len(src) == 8*len(dst))
// into dst with wrapping addition.
func addInt64LE(dst []int64, src []byte) {
	src = src[:8*len(dst)]
	for i := range dst {
		dst[i] += int64(binary.LittleEndian.Uint64(src[8*i:]))
	}
}

// copyInt64LE copies the little-endian int64s in src (len(src) == 8*len(dst)) into dst.
func copyInt64LE(dst []int64, src []byte) {
	src = src[:8*len(dst)]
	for i := range dst {
		dst[i] = int64(binary.LittleEndian.Uint64(src[8*i:]))
	}
}
