package allreduce

// applyPayload applies op (addLE or copyLE) to dst and the payload of f, which
// must be 4*len(dst) bytes long, piece by piece: f.Data, then f.Parts. An
// element that straddles two pieces is reassembled in a 4-byte carry.
func applyPayload(dst []float32, f *Frame, op func(dst []float32, src []byte)) {
	c := newCursor(f)
	c.apply(dst, 4, op)
}

// applyFrame applies a received frame laid out as l to dst: the bfloat16
// elements with op16, the float32 ones with op32 (add in reduce-scatter,
// copy in all-gather).
func applyFrame(dst []float32, f *Frame, l layout, op16, op32 func(dst []float32, src []byte)) {
	c := newCursor(f)
	if l.n16 > 0 {
		c.apply(dst[:l.n16], 2, op16)
		c.skip(l.pad)
	}
	c.apply(dst[l.n16:], 4, op32)
}
