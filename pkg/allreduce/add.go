package allreduce

// addElems adds src into dst element-wise (IEEE-754 for float32, wrapping
// two's complement for int64); len(src) must be at least len(dst).
func addElems[E Element](dst, src []E) {
	src = src[:len(dst)]
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		d, s := dst[i:i+4:i+4], src[i:i+4:i+4]
		d[0] += s[0]
		d[1] += s[1]
		d[2] += s[2]
		d[3] += s[3]
	}
	for ; i < len(dst); i++ {
		dst[i] += src[i]
	}
}
