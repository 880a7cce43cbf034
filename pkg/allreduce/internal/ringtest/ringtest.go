// Package ringtest holds test data shared by the ring transports' tests.
package ringtest

import "math/rand/v2"

// Int64Buffers returns n buffers of length l for an int64 all-reduce, and
// their element-wise sums. Each element is sign·2^62 plus noise below 2^40,
// with signs as balanced as n allows and shuffled, so that neighbours in
// ring order overflow a partial sum while every total fits in an int64:
// the wrapping sum computed here is the true one.
func Int64Buffers(n, l int, seed uint64) ([][]int64, []int64) {
	rng := rand.New(rand.NewPCG(seed, uint64(n*1_000_003+l)))
	bufs := make([][]int64, n)
	for r := range bufs {
		bufs[r] = make([]int64, l)
	}
	sum := make([]int64, l)
	signs := make([]int64, n)
	for i := range l {
		for r := range signs {
			signs[r] = int64(1 - 2*(r%2))
		}
		rng.Shuffle(n, func(a, b int) { signs[a], signs[b] = signs[b], signs[a] })
		for r := range n {
			v := signs[r]*(1<<62) + rng.Int64N(1<<41) - 1<<40
			bufs[r][i] = v
			sum[i] += v
		}
	}
	return bufs, sum
}
