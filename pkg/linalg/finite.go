package linalg

import "math"

// allFiniteGo is the portable AllFinite: an exponent of all ones marks NaN
// and the infinities.
func allFiniteGo(x []float32) bool {
	var bad uint32
	for _, v := range x {
		e := math.Float32bits(v) & 0x7f800000
		if e == 0x7f800000 {
			bad = 1
		}
	}
	return bad == 0
}
