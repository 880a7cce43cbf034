package linalg

// packStrip is the number of depth steps packRows handles per pass over the
// source rows. It keeps the strided writes of one pass (packStrip*w floats,
// at most 64*48*4 = 12 KiB) inside L1.
const packStrip = 64

// packRows packs a micro-panel whose w lanes are rows of a row-major source:
// lane r at depth p is src[r*ld+p]. Lanes rows..w-1 are zero. The result,
// dst[p*w+r], has kc groups of w floats. Used for op(A) = A (lanes are rows
// of A) and op(B) = B^T (lanes are rows of B).
func packRows(dst, src []float32, ld, rows, w, kc int) {
	if packRowsFast(dst, src, ld, rows, w, kc) {
		return
	}
	packRowsGo(dst, src, ld, rows, w, kc)
}

// packRowsGo is the portable implementation of packRows.
func packRowsGo(dst, src []float32, ld, rows, w, kc int) {
	dst = dst[:kc*w]
	for p0 := 0; p0 < kc; p0 += packStrip {
		pn := min(packStrip, kc-p0)
		for r := range rows {
			s := src[r*ld+p0 : r*ld+p0+pn]
			d := dst[p0*w+r:]
			for p, v := range s {
				d[p*w] = v
			}
		}
	}
	if rows < w {
		for p := range kc {
			clear(dst[p*w+rows : p*w+w])
		}
	}
}

// packCols packs a micro-panel whose w lanes are columns of a row-major
// source: lane r at depth p is src[p*ld+r]. Lanes cols..w-1 are zero. Used
// for op(A) = A^T and op(B) = B, where each depth step is a contiguous copy.
func packCols(dst, src []float32, ld, cols, w, kc int) {
	if packColsFast(dst, src, ld, cols, w, kc) {
		return
	}
	dst = dst[:kc*w]
	for p := range kc {
		d := dst[p*w : p*w+w]
		copy(d, src[p*ld:p*ld+cols])
		clear(d[cols:])
	}
}
