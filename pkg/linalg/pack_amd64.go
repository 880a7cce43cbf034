//go:build amd64

package linalg

import "golang.org/x/sys/cpu"

// packRowsTrans8 is the AVX transposing pack for full panels of
// w = 8*groups lanes and a depth of 8*kc8:
// dst[p*w+r] = src[r*ld+p] for r < w, p < 8*kc8.
//
//go:noescape
func packRowsTrans8(dst, src *float32, ld, groups, kc8 int)

// packRowsFast packs full panels whose width is a multiple of 8 with
// packRowsTrans8 (depth steps beyond the last multiple of 8 in Go). It
// reports false, having done nothing, when the caller must use packRowsGo.
func packRowsFast(dst, src []float32, ld, rows, w, kc int) bool {
	if !cpu.X86.HasAVX || rows != w || w%8 != 0 || kc < 8 {
		return false
	}
	_ = dst[kc*w-1]
	_ = src[(rows-1)*ld+kc-1] // the asm reads exactly this range
	kc8 := kc / 8
	packRowsTrans8(&dst[0], &src[0], ld, w/8, kc8)
	for p := kc8 * 8; p < kc; p++ {
		d := dst[p*w : p*w+w]
		for r := range d {
			d[r] = src[r*ld+p]
		}
	}
	return true
}

// packColsCopy8 is the AVX copying pack for full panels of w = 8*groups
// lanes: dst[p*w+r] = src[p*ld+r] for r < w, p < kc.
//
//go:noescape
func packColsCopy8(dst, src *float32, ld, groups, kc int)

// packColsFast packs full panels whose width is a multiple of 8 with
// packColsCopy8. It reports false, having done nothing, when the caller
// must use the portable loop.
func packColsFast(dst, src []float32, ld, cols, w, kc int) bool {
	if !cpu.X86.HasAVX || cols != w || w%8 != 0 {
		return false
	}
	_ = dst[kc*w-1]
	_ = src[(kc-1)*ld+cols-1] // the asm reads exactly this range
	packColsCopy8(&dst[0], &src[0], ld, w/8, kc)
	return true
}
