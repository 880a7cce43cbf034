package engine

import (
	"errors"
	"fmt"
	"math"

	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/linalg"
	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/shard"
)

// Exact reduction (model.Exact): a shard's gradient sums are fixed-point
// integers in net.IGrads, and the all-reduce adds int64 buffers, so the sum
// over the global batch is the same integers whatever the number of
// workers, threads, micro-batches, ring order or retried attempts. The
// all-reduced buffer is the whole of net.IGrads: its model.ExactHead slots
// carry the step's totals in front of the gradients, so they travel with
// the first layer's gradients, the last bucket backward completes (when
// every flag below is known).

// The head slots of IGrads (ExactHead has room for them).
const (
	headLoss      = iota // the loss sum, fixed point
	headCorrect          // samples classified correctly
	headCount            // samples
	headNonFinite        // blocks whose gradient or loss sum is NaN or infinite
	headOverflow         // blocks whose sum is outside the fixed-point range
)

// ErrFixedOverflow is returned when a block's gradient or loss sum is too
// large for the fixed-point format of exact reduction: adding it could
// overflow an int64, so the step's sums are not used.
var ErrFixedOverflow = errors.New("fixed-point overflow")

// ExactBuffer returns the buffer the all-reduce moves under exact
// reduction: net.IGrads, the totals' head and the fixed-point gradients.
func ExactBuffer(net *model.Network) []int64 { return net.IGrads }

// ExactLimit returns the largest block sum magnitude allowed when a step's
// global batch has at most maxBlocks blocks (linalg.FixedLimit).
func ExactLimit(e model.Exact, maxBlocks int) float64 {
	return linalg.FixedLimit(e.FracBits, maxBlocks)
}

// MaxBlocks returns the number of blocks of the largest global batch of a
// run: batch samples (0 or more than rows: the full set of rows), cut in
// blocks of e.Block.
func MaxBlocks(e model.Exact, batch, rows int) int {
	if batch <= 0 || batch > rows {
		batch = rows
	}
	return (max(batch, 1) + e.Block - 1) / e.Block
}

// ShardGradientsExact is ShardGradientsKHooked under exact reduction: it
// overwrites net.IGrads with the fixed-point gradient sums of the shard's
// rows (cut into at most k micro-batches of whole blocks, so that only one
// piece's activations are held at a time), and writes the shard's totals
// and flags into the head before the first layer is reported done. A
// block sum of magnitude limit or more (ExactLimit) is flagged as an
// overflow, a NaN or infinite one as non-finite. It returns the shard's
// own totals. The rows must start on a block boundary of the global batch
// (shard.SplitBlocks).
func ShardGradientsExact(net *model.Network, ds *data.Dataset, idx []int, k int, b *Buffers, limit float64, layerDone func(layer int)) Totals {
	e := net.Exact()
	head := net.IGrads[:model.ExactHead]
	pieces := shard.SplitBlocks(len(idx), max(k, 1), e.Block)
	// The last non-empty piece reports every layer; an empty shard runs
	// one empty pass, which reports them all.
	last := 0
	for i, p := range pieces {
		if p.Len() > 0 {
			last = i
		}
	}
	var sums model.ExactSums
	f := ds.Features
	for i, p := range pieces[:last+1] {
		part := idx[p.Start:p.End]
		xb, lb := b.sized(len(part), f)
		net.Pool().For(len(part), 32, func(a, z int) {
			ds.Gather(part[a:z], xb[a*f:z*f], lb[a:z])
		})
		var h model.ExactHooks
		if i == last {
			before := sums
			h = model.ExactHooks{LayerDone: layerDone, Sums: func(s model.ExactSums) {
				putHead(head, before.Add(s), len(idx), limit)
			}}
		}
		sums = sums.Add(net.GradientsExact(xb, lb, i > 0, h))
	}
	return Totals{LossSum: fixedValue(sums.Loss, e.FracBits), Correct: sums.Correct, Count: len(idx)}
}

// putHead writes a shard's totals and flags into the head of IGrads.
func putHead(head []int64, s model.ExactSums, count int, limit float64) {
	clear(head)
	head[headLoss], head[headCorrect], head[headCount] = s.Loss, int64(s.Correct), int64(count)
	g, l := float64(s.MaxGrad), s.MaxLoss
	switch {
	case math.IsNaN(g) || math.IsInf(g, 0) || math.IsNaN(l) || math.IsInf(l, 0):
		head[headNonFinite] = 1
	case g >= limit || l >= limit:
		head[headOverflow] = 1
	}
}

// fixedValue converts a fixed-point sum to float64.
func fixedValue(q int64, fracBits int) float64 { return math.Ldexp(float64(q), -fracBits) }

// FinishExact reads the all-reduced head of net.IGrads: it returns an
// error wrapping model.ErrNonFinite (and ErrFixedOverflow for a sum out of
// range) when a worker flagged a block, and otherwise converts the
// fixed-point gradients into net.Grads (one rounding to float32 each) and
// returns the global batch's totals. Every replica holds the same
// integers, so every replica reaches the same verdict and the same Grads.
func FinishExact(net *model.Network, limit float64) (Totals, error) {
	t, err := ExactTotals(net, limit)
	if err == nil {
		ConvertExact(net, 0, len(net.IGrads))
	}
	return t, err
}

// ExactTotals is FinishExact without the conversion, for a caller that
// converted every bucket with ConvertExact as its all-reduce ended.
func ExactTotals(net *model.Network, limit float64) (Totals, error) {
	e := net.Exact()
	head := net.IGrads[:model.ExactHead]
	t := Totals{LossSum: fixedValue(head[headLoss], e.FracBits), Correct: int(head[headCorrect]), Count: int(head[headCount])}
	switch {
	case head[headNonFinite] != 0:
		return t, fmt.Errorf("gradient or loss: a block sum is NaN or infinite (in %d of the step's shards): %w", head[headNonFinite], model.ErrNonFinite)
	case head[headOverflow] != 0:
		return t, fmt.Errorf("exact reduction: a block sum of magnitude %.3g or more (in %d of the step's shards) is outside the fixed-point range of %d fractional bits: use fewer with --exact-frac-bits, or a lower learning rate if the run diverges: %w: %w",
			limit, head[headOverflow], e.FracBits, ErrFixedOverflow, model.ErrNonFinite)
	}
	return t, nil
}

// ConvertExact converts the fixed-point gradients in [start, end) of
// net.IGrads (ExactBuffer indices; the head is skipped) into the same
// parameters' places of net.Grads. Converting before the verdict of
// ExactTotals is harmless: a flagged step's Grads are never applied.
func ConvertExact(net *model.Network, start, end int) {
	start = max(start, model.ExactHead)
	if start >= end {
		return
	}
	linalg.FixedToFloat(net.Grads[start-model.ExactHead:end-model.ExactHead], net.IGrads[start:end], net.Exact().FracBits)
}

// BucketsExact is Buckets for the all-reduced buffer of exact reduction
// (ExactBuffer, 8-byte elements): the same cuts at layer boundaries, last
// layer first, within capBytes; the head of totals, at the front of the
// buffer, goes with the bucket of the first layer, which completes last.
func BucketsExact(net *model.Network, capBytes int) []Bucket {
	bs := Buckets(net, capBytes/2) // Buckets counts 4-byte elements
	for i := range bs {
		b := &bs[i]
		if b.End > len(net.Grads) {
			b.End = len(net.Grads) // the float buffer's trailing totals
		}
		b.Start += model.ExactHead
		b.End += model.ExactHead
		if b.First == 0 {
			b.Start = 0
		}
	}
	return bs
}
