//go:build !amd64

package linalg

// packRowsFast reports false: there is no accelerated pack on this
// architecture and packRowsGo does the work.
func packRowsFast(dst, src []float32, ld, rows, w, kc int) bool { return false }

// packColsFast reports false: there is no accelerated pack on this
// architecture and the portable loop in packCols does the work.
func packColsFast(dst, src []float32, ld, cols, w, kc int) bool { return false }
