//go:build 386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm

package allreduce

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// On little-endian hosts a []float32 already is its wire encoding: encode
// returns a view of src's memory (no copy) and decoding reinterprets aligned
// payloads in place. Unaligned payloads fall back to encoding/binary.

// encode returns the little-endian bytes of src and the scratch buffer to reuse
// next time (unused here).
func encode(scratch []byte, src []float32) (data, _ []byte) {
	if len(src) == 0 {
		return nil, scratch
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(src))), 4*len(src)), scratch
}

// asFloats reinterprets src as float32s when it is 4-byte aligned.
func asFloats(src []byte) ([]float32, bool) {
	if len(src) == 0 || uintptr(unsafe.Pointer(unsafe.SliceData(src)))%4 != 0 {
		return nil, false
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(src))), len(src)/4), true
}

// unalignedBlock is the number of elements an unaligned payload is staged in at
// a time: 4 KiB, which stays in L1 while it is added.
const unalignedBlock = 1024

// addLE adds the little-endian float32s in src (len(src) == 4*len(dst)) into dst,
// with AVX2 where the CPU has it (any alignment). Otherwise, payloads that are
// not 4-byte aligned (received pieces start anywhere) are
// copied block by block into an aligned scratch array first: a memmove within
// L1 is cheaper than decoding element by element.
func addLE(dst []float32, src []byte) {
	if n := addVec(dst, src); n > 0 {
		dst, src = dst[n:], src[4*n:]
	}
	if f, ok := asFloats(src); ok {
		addElems(dst, f)
		return
	}
	src = src[:4*len(dst)]
	if len(dst) < 16 {
		for i := range dst {
			dst[i] += math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
		return
	}
	var tmp [unalignedBlock]float32
	for len(dst) > 0 {
		k := min(len(dst), unalignedBlock)
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&tmp[0])), 4*k), src[:4*k])
		addElems(dst[:k], tmp[:k])
		dst, src = dst[k:], src[4*k:]
	}
}

// copyLE copies the little-endian float32s in src (len(src) == 4*len(dst)) into dst.
func copyLE(dst []float32, src []byte) {
	if len(dst) == 0 {
		return
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst))), 4*len(dst)), src)
}

// encodeInt64 returns the little-endian bytes of src (a view of its memory)
// and the scratch buffer to reuse next time (unused here).
func encodeInt64(scratch []byte, src []int64) (data, _ []byte) {
	if len(src) == 0 {
		return nil, scratch
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(src))), 8*len(src)), scratch
}

// asInt64s reinterprets src as int64s when it is 8-byte aligned.
func asInt64s(src []byte) ([]int64, bool) {
	if len(src) == 0 || uintptr(unsafe.Pointer(unsafe.SliceData(src)))%8 != 0 {
		return nil, false
	}
	return unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(src))), len(src)/8), true
}

// addInt64LE adds the little-endian int64s in src (len(src) == 8*len(dst))
// into dst with wrapping addition, with AVX2 where the CPU has it (any
// alignment). Otherwise aligned payloads are read in place and unaligned
// ones staged block by block in an aligned array, as addLE does.
func addInt64LE(dst []int64, src []byte) {
	if n := addInt64Vec(dst, src); n > 0 {
		dst, src = dst[n:], src[8*n:]
	}
	if s, ok := asInt64s(src); ok {
		addElems(dst, s)
		return
	}
	src = src[:8*len(dst)]
	if len(dst) < 8 {
		for i := range dst {
			dst[i] += int64(binary.LittleEndian.Uint64(src[8*i:]))
		}
		return
	}
	var tmp [unalignedBlock / 2]int64
	for len(dst) > 0 {
		k := min(len(dst), len(tmp))
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&tmp[0])), 8*k), src[:8*k])
		addElems(dst[:k], tmp[:k])
		dst, src = dst[k:], src[8*k:]
	}
}

// copyInt64LE copies the little-endian int64s in src (len(src) == 8*len(dst)) into dst.
func copyInt64LE(dst []int64, src []byte) {
	if len(dst) == 0 {
		return
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst))), 8*len(dst)), src)
}
