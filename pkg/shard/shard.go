// Package shard turns a data set of n samples into epochs, global batches and
// per-worker shards. Everything here is a pure function: no I/O, no state.
//
// The contract the trainer relies on (architecture brief, "global batch, exact
// average"): step s of epoch e takes global batch Batch(Permutation(seed, e, n), s, B),
// and that batch is cut into contiguous per-worker ranges with Split. Because the
// global batch does not depend on the number of workers, neither does the summed
// gradient.
package shard

import (
	"fmt"
	"math/rand/v2"
)

// Permutation returns a permutation of the sample indices 0..n-1 for the given epoch.
//
// Exact derivation (keep it stable: checkpoints and reproducibility depend on it):
// a PCG generator is seeded with rand.NewPCG(seed, uint64(epoch)), and a Fisher–Yates
// shuffle is applied to the identity slice [0, 1, ..., n-1] using rand.New(pcg).Shuffle
// from math/rand/v2 (whose algorithm the Go 1 compatibility promise keeps stable for a
// given source). The same (seed, epoch, n) always gives the same permutation.
// For "shuffle once" mode the caller passes epoch 0 every epoch. n <= 0 yields an
// empty slice. A negative epoch is converted with uint64(epoch) like any other.
func Permutation(seed uint64, epoch, n int) []int {
	if n <= 0 {
		return []int{}
	}
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	r := rand.New(rand.NewPCG(seed, uint64(epoch)))
	r.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	return perm
}

// Steps returns the number of steps in an epoch of n samples with global batch size
// batch. batch <= 0 or batch >= n means full batch: one step. The last batch may be
// short (like PyTorch's drop_last=False), so Steps is ceil(n/batch). n <= 0 gives 0.
func Steps(n, batch int) int {
	if n <= 0 {
		return 0
	}
	if batch <= 0 || batch >= n {
		return 1
	}
	return (n + batch - 1) / batch
}

// Batch returns the global batch for step step of an epoch: the sub-slice
// perm[step*batch : min((step+1)*batch, len(perm))] (no copy; the caller must not
// modify it). batch <= 0 or batch >= len(perm) means full batch, so step 0 returns
// all of perm. It panics, naming the step, when step is outside [0, Steps(len(perm), batch)),
// since that is a programming error in the caller's schedule.
func Batch(perm []int, step, batch int) []int {
	n := len(perm)
	steps := Steps(n, batch)
	if step < 0 || step >= steps {
		panic(fmt.Sprintf("shard.Batch: step %d out of range [0, %d) for %d samples and batch %d", step, steps, n, batch))
	}
	if batch <= 0 || batch >= n {
		return perm
	}
	start := step * batch
	end := min(start+batch, n)
	return perm[start:end:end]
}

// Range is a half-open [Start, End) interval of a global batch.
type Range struct{ Start, End int }

// Len returns the number of samples in the range.
func (r Range) Len() int { return r.End - r.Start }

// Split cuts a global batch of length n into workers contiguous shards whose sizes
// differ by at most one: the first n%workers shards get one extra sample. With more
// workers than samples the trailing shards are empty (Start == End == n). The ranges
// are in worker (ring rank) order and together cover [0, n) exactly once.
// workers <= 0 returns nil; n < 0 is treated as 0.
func Split(n, workers int) []Range {
	if workers <= 0 {
		return nil
	}
	n = max(n, 0)
	out := make([]Range, workers)
	base, extra := n/workers, n%workers
	start := 0
	for w := range out {
		size := base
		if w < extra {
			size++
		}
		out[w] = Range{Start: start, End: start + size}
		start += size
	}
	return out
}

// SplitBlocks is Split in whole blocks: the global batch of length n is
// cut into consecutive blocks of block samples from its start (the last
// one may be shorter), and the blocks, not the samples, are shared out
// among workers by Split, so every shard starts on a block boundary and
// holds whole blocks, their counts differing by at most one. Exact
// reduction needs this: a block's sum is the unit that is added exactly,
// so the blocks must not depend on the number of workers. block <= 1 is
// Split.
func SplitBlocks(n, workers, block int) []Range {
	if block <= 1 {
		return Split(n, workers)
	}
	n = max(n, 0)
	out := Split((n+block-1)/block, workers)
	for i, r := range out {
		out[i] = Range{Start: min(r.Start*block, n), End: min(r.End*block, n)}
	}
	return out
}
