// Package engine is the computation of a training step on one shard, shared
// by the single-process trainer and the workers: gather the shard's rows,
// run forward and backward, and lay the gradient sums and the step's
// totals out in the one buffer that the all-reduce moves. It also holds the
// one finiteness check of a step and the evaluation of a data set.
//
// It sits between pkg/model (the math) and its callers, and imports
// nothing that draws or writes files, so a worker binary links only what
// it computes with.
package engine

import (
	"fmt"

	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/linalg"
	"github.com/ringtrain/ringtrain/pkg/model"
)

// Trailing is the number of scalars behind the gradient sums in the
// all-reduced buffer: the loss sum, the correct count and the sample count,
// in that order (see PutTotals). It fits model.GradTail.
const Trailing = 3

// Totals are the sums a step produces over its samples.
type Totals struct {
	LossSum float64 // sum of per-sample losses
	Correct int     // samples classified correctly (before the update)
	Count   int     // samples
}

// PutTotals writes t into the Trailing scalars of tail.
func PutTotals(tail []float32, t Totals) {
	tail[0], tail[1], tail[2] = float32(t.LossSum), float32(t.Correct), float32(t.Count)
}

// ReadTotals reads the Trailing scalars of tail (after an all-reduce: the
// sums over the global batch).
func ReadTotals(tail []float32) Totals {
	return Totals{LossSum: float64(tail[0]), Correct: int(tail[1] + 0.5), Count: int(tail[2] + 0.5)}
}

// WithTotals returns net's gradient buffer extended by the Trailing
// scalars, the buffer the all-reduce moves.
func WithTotals(net *model.Network) []float32 {
	return net.Grads[:len(net.Grads)+Trailing]
}

// Buffers are reusable gather buffers for one shard.
type Buffers struct {
	x      []float32
	labels []int32
}

func (b *Buffers) sized(rows, features int) ([]float32, []int32) {
	if cap(b.x) < rows*features {
		b.x = make([]float32, rows*features)
	}
	if cap(b.labels) < rows {
		b.labels = make([]int32, rows)
	}
	return b.x[:rows*features], b.labels[:rows]
}

// ShardGradients overwrites net's gradients with the gradient sum over the
// rows of ds named by idx and returns the shard's totals. It does not check
// finiteness: a worker must take part in the all-reduce whatever its shard
// gave, so that every replica sees the same totals and the same verdict
// (CheckStep).
func ShardGradients(net *model.Network, ds *data.Dataset, idx []int, b *Buffers) Totals {
	if len(idx) == 0 {
		net.ZeroGrad()
		return Totals{}
	}
	xb, lb := b.sized(len(idx), ds.Features)
	f := ds.Features
	// Rows are copied independently: split among the network's threads.
	net.Pool().For(len(idx), 32, func(lo, hi int) {
		ds.Gather(idx[lo:hi], xb[lo*f:hi*f], lb[lo:hi])
	})
	loss, correct := net.Gradients(xb, lb)
	return Totals{LossSum: loss, Correct: correct, Count: len(idx)}
}

// ShardGradientsK is ShardGradients computed in k micro-batches (gradient
// accumulation): idx is cut into k contiguous pieces whose sizes differ by
// at most one, each piece's gradient sum is added into net's gradients, and
// the totals are added up, so that only one piece's rows are gathered and
// held in activations at a time. A shard with fewer rows than k is
// processed one row per piece (no empty piece is run). The result equals
// ShardGradients within float32 rounding: the gradient sums are added in
// another order. k <= 1 is ShardGradients.
func ShardGradientsK(net *model.Network, ds *data.Dataset, idx []int, k int, b *Buffers) Totals {
	return ShardGradientsKHooked(net, ds, idx, k, b, nil, nil)
}

// ShardGradientsKHooked is ShardGradientsK that reports like
// ShardGradientsHooked: totals gets the sums over the whole shard before
// the last piece's backward starts, and layerDone each layer during that
// last backward (only then are a layer's gradients final). k <= 1 is
// ShardGradientsHooked.
func ShardGradientsKHooked(net *model.Network, ds *data.Dataset, idx []int, k int, b *Buffers, totals func(Totals), layerDone func(layer int)) Totals {
	if k <= 1 || len(idx) <= 1 {
		return ShardGradientsHooked(net, ds, idx, b, totals, layerDone)
	}
	k = min(k, len(idx))
	var t Totals
	f := ds.Features
	lo := 0
	for i := range k {
		hi := lo + len(idx)/k
		if i < len(idx)%k {
			hi++
		}
		part := idx[lo:hi]
		lo = hi
		xb, lb := b.sized(len(part), f)
		net.Pool().For(len(part), 32, func(a, z int) {
			ds.Gather(part[a:z], xb[a*f:z*f], lb[a:z])
		})
		var loss float64
		var correct int
		switch {
		case i == 0:
			loss, correct = net.Gradients(xb, lb)
		case i < k-1:
			loss, correct = net.ForwardBackward(xb, lb, nil)
		default:
			// The last piece: its loss completes the totals before its
			// backward, which finishes every layer's gradient.
			rows := len(part)
			loss, correct = net.ForwardBackwardHooked(xb, lb, model.BackwardHooks{LayerDone: layerDone,
				Loss: func(l float64, c int) {
					if totals != nil {
						totals(Totals{LossSum: t.LossSum + l, Correct: t.Correct + c, Count: t.Count + rows})
					}
				}})
		}
		t.LossSum += loss
		t.Correct += correct
		t.Count += len(part)
	}
	return t
}

// CheckStep is the finiteness check of a step, on the gradient sums and the
// loss sum of the whole global batch: an error wrapping model.ErrNonFinite
// names the first NaN or infinity. The single-process trainer and every
// worker (after the all-reduce) apply the same check to the same sums, so
// they skip the same batches. The gradient is scanned on p's threads (nil:
// one).
func CheckStep(p *linalg.Pool, grads []float32, t Totals) error {
	if err := model.CheckFinitePool(p, "gradient", grads); err != nil {
		return err
	}
	return model.CheckFinite("loss", []float32{float32(t.LossSum)})
}

// evalChunk bounds the rows evaluated at once, and so the activation memory.
const evalChunk = 256

// Evaluate returns the loss sum and correct count of net over every row of
// ds, evaluated in chunks to bound memory.
func Evaluate(net *model.Network, ds *data.Dataset, b *Buffers) (float64, int, error) {
	if ds.Features != net.Config.Inputs {
		return 0, 0, fmt.Errorf("data set %s has %d features but the network takes %d inputs", ds.Name, ds.Features, net.Config.Inputs)
	}
	var loss float64
	correct := 0
	idx := make([]int, 0, evalChunk)
	for start := 0; start < ds.Rows(); start += evalChunk {
		idx = idx[:0]
		for i := start; i < min(start+evalChunk, ds.Rows()); i++ {
			idx = append(idx, i)
		}
		xb, lb := b.sized(len(idx), ds.Features)
		ds.Gather(idx, xb, lb)
		l, c := net.Evaluate(xb, lb)
		loss += l
		correct += c
	}
	return loss, correct, nil
}

// Bucket is a contiguous range [Start, End) of the all-reduced buffer
// (WithTotals) whose gradients are complete once layer First's backward
// has produced its parameter gradients: it holds layers First..Last.
type Bucket struct {
	Start, End  int
	First, Last int
}

// Buckets cuts the all-reduced buffer of net into buckets in the order
// backward completes them: the last layer first, and consecutive layers
// share a bucket while it stays within capBytes (a layer larger than the
// cap has a bucket of its own). The first bucket also carries the
// Trailing totals, which are known before backward starts. capBytes <= 0
// gives one bucket for the whole buffer (no overlap with backward). The
// cut depends only on the network and capBytes, so every rank makes the
// same one.
func Buckets(net *model.Network, capBytes int) []Bucket {
	ls := net.Layers
	offs := make([]int, len(ls)+1)
	for i, l := range ls {
		offs[i+1] = offs[i] + l.NumParams()
	}
	end := offs[len(ls)] + Trailing
	if capBytes <= 0 {
		return []Bucket{{Start: 0, End: end, First: 0, Last: len(ls) - 1}}
	}
	var out []Bucket
	b := Bucket{End: end, First: len(ls) - 1, Last: len(ls) - 1}
	b.Start = offs[b.First]
	for i := len(ls) - 2; i >= 0; i-- {
		if 4*(b.End-offs[i]) <= capBytes {
			b.First, b.Start = i, offs[i]
			continue
		}
		out = append(out, b)
		b = Bucket{Start: offs[i], End: offs[i+1], First: i, Last: i}
	}
	return append(out, b)
}

// ShardGradientsHooked is ShardGradients that reports the shard's totals
// through totals (before backward starts) and each layer whose parameter
// gradients are final through layerDone, as model.BackwardHooks does.
func ShardGradientsHooked(net *model.Network, ds *data.Dataset, idx []int, b *Buffers, totals func(Totals), layerDone func(layer int)) Totals {
	h := model.BackwardHooks{LayerDone: layerDone}
	rows := len(idx)
	h.Loss = func(loss float64, correct int) {
		if totals != nil {
			totals(Totals{LossSum: loss, Correct: correct, Count: rows})
		}
	}
	if rows == 0 {
		net.GradientsHooked(nil, nil, h)
		return Totals{}
	}
	xb, lb := b.sized(rows, ds.Features)
	f := ds.Features
	net.Pool().For(rows, 32, func(lo, hi int) {
		ds.Gather(idx[lo:hi], xb[lo*f:hi*f], lb[lo:hi])
	})
	loss, correct := net.GradientsHooked(xb, lb, h)
	return Totals{LossSum: loss, Correct: correct, Count: rows}
}

// KeptInputs lists, into dst, the input features not marked in zero (a
// data.Dataset.ZeroFeatures bitmap of (features+7)/8 bytes). It returns
// nil when every feature is kept or zero is empty, and an error when the
// bitmap's length does not fit features.
func KeptInputs(zero []byte, features int, dst []int32) ([]int32, error) {
	if len(zero) == 0 {
		return nil, nil
	}
	if len(zero) != (features+7)/8 {
		return nil, fmt.Errorf("zero-input bitmap of %d bytes for %d features, want %d", len(zero), features, (features+7)/8)
	}
	dst = dst[:0]
	for j := range features {
		if zero[j/8]&(1<<(j%8)) == 0 {
			dst = append(dst, int32(j))
		}
	}
	if len(dst) == features {
		return nil, nil
	}
	return dst, nil
}

// runs cuts a sorted list of columns into runs of consecutive ones
// ([start, end) pairs): the kept pixels of an image row are contiguous, so
// a row of 784 MNIST pixels becomes a few dozen runs, each one copy.
func runs(kept []int32) [][2]int {
	var out [][2]int
	for i := 0; i < len(kept); {
		j := i + 1
		for j < len(kept) && kept[j] == kept[j-1]+1 {
			j++
		}
		out = append(out, [2]int{int(kept[i]), int(kept[j-1]) + 1})
		i = j
	}
	return out
}

// PackColumns copies the kept columns (sorted, distinct) of m (rows x
// cols, row-major) into dst (rows x len(kept)), row by row.
func PackColumns(dst, m []float32, rows, cols int, kept []int32) {
	k := len(kept)
	rs := runs(kept)
	for r := range rows {
		row, out := m[r*cols:(r+1)*cols], dst[r*k:(r+1)*k]
		at := 0
		for _, run := range rs {
			at += copy(out[at:], row[run[0]:run[1]])
		}
	}
}

// UnpackColumns writes src (rows x len(kept)) into the kept columns
// (sorted, distinct) of m (rows x cols, row-major); with zeroOthers it sets
// every other element to +0, so that every replica holds the same bits
// there.
func UnpackColumns(m, src []float32, rows, cols int, kept []int32, zeroOthers bool) {
	k := len(kept)
	rs := runs(kept)
	for r := range rows {
		row, in := m[r*cols:(r+1)*cols], src[r*k:(r+1)*k]
		at, prev := 0, 0
		for _, run := range rs {
			if zeroOthers {
				clear(row[prev:run[0]])
			}
			at += copy(row[run[0]:run[1]], in[at:])
			prev = run[1]
		}
		if zeroOthers {
			clear(row[prev:])
		}
	}
}
