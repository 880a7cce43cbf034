//go:build !amd64

package allreduce

// addVec handles no elements where no vector kernel exists; see add_amd64.go.
func addVec(dst []float32, src []byte) int { return 0 }

// addInt64Vec handles no elements where no vector kernel exists; see add_amd64.go.
func addInt64Vec(dst []int64, src []byte) int { return 0 }
