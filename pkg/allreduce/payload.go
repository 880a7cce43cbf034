package allreduce

import "unsafe"

// applyPayload applies op (addLE or copyLE, addInt64LE or copyInt64LE) to
// dst and the payload of f, which must be sizeof(E)*len(dst) bytes long,
// piece by piece: f.Data, then f.Parts. An element that straddles two
// pieces is reassembled in a carry.
func applyPayload[E Element](dst []E, f *Frame, op func(dst []E, src []byte)) {
	c := newCursor(f)
	var e E
	applyElems(&c, dst, int(unsafe.Sizeof(e)), op)
}

// applyFrame applies a received frame laid out as l to dst: the bfloat16
// elements with op16, the float32 ones with op32 (add in reduce-scatter,
// copy in all-gather).
func applyFrame(dst []float32, f *Frame, l layout, op16, op32 func(dst []float32, src []byte)) {
	c := newCursor(f)
	if l.n16 > 0 {
		applyElems(&c, dst[:l.n16], 2, op16)
		c.skip(l.pad)
	}
	applyElems(&c, dst[l.n16:], 4, op32)
}
