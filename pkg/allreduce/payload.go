package allreduce

// applyPayload applies op (addLE or copyLE) to dst and the payload of f, which
// must be 4*len(dst) bytes long, piece by piece: f.Data, then f.Parts. An
// element that straddles two pieces is reassembled in a 4-byte carry.
func applyPayload(dst []float32, f *Frame, op func(dst []float32, src []byte)) {
	var (
		carry [4]byte
		nc    int // bytes held in carry
		i     int // next element of dst
	)
	piece := func(p []byte) {
		if nc > 0 {
			k := copy(carry[nc:], p)
			nc += k
			p = p[k:]
			if nc < 4 {
				return
			}
			op(dst[i:i+1], carry[:])
			i++
			nc = 0
		}
		m := len(p) / 4
		if m > 0 {
			op(dst[i:i+m], p[:4*m])
			i += m
		}
		nc = copy(carry[:], p[4*m:])
	}
	piece(f.Data)
	for _, p := range f.Parts {
		piece(p)
	}
}
