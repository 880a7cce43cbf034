//go:build !amd64

package allreduce

// No vector kernels here: the scalar loops of wire.go handle everything.
func encodeBF16Vec(dst []byte, src, residual []float32, own bool) int { return 0 }
func addBF16Vec(dst []float32, src []byte) int                        { return 0 }
func copyBF16Vec(dst []float32, src []byte) int                       { return 0 }
