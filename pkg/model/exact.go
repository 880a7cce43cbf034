package model

import (
	"fmt"
	"math"

	"github.com/ringtrain/ringtrain/pkg/linalg"
)

// Exact reduction: the sums over samples of a pass (weight and bias
// gradients, loss) as fixed-point integers whose addition is exact, so
// that they do not depend on how the samples were split among workers,
// threads or micro-batches (see pkg/linalg/fixed.go for the arithmetic).
//
// The rows of a pass are cut into blocks of Exact.Block rows from its first
// row; each block's sums are computed in float32 (the loss in float64) in
// one fixed order and converted to int64 with Exact.FracBits fractional
// bits; the blocks' integers are added. A caller that passes whole blocks
// of a fixed global batch (pkg/shard.SplitBlocks) gets the same integers
// for the batch whatever the split.

// Exact configures exact reduction. The zero value is off.
type Exact struct {
	// Block is the number of samples whose sums are formed in float32
	// before they are converted to fixed point.
	Block int
	// FracBits is the number of fractional bits of the fixed-point sums:
	// their resolution is 2^-FracBits.
	FracBits int
}

// Defaults of exact reduction.
const (
	DefaultExactBlock    = 16
	DefaultExactFracBits = 32
)

// On reports whether exact reduction is configured.
func (e Exact) On() bool { return e.Block > 0 }

// Validate reports the first problem with the configuration.
func (e Exact) Validate() error {
	switch {
	case e.Block < 1:
		return fmt.Errorf("exact block must be at least 1 sample, got %d", e.Block)
	case e.FracBits < 0 || e.FracBits > linalg.MaxFracBits:
		return fmt.Errorf("exact fractional bits must be 0..%d, got %d", linalg.MaxFracBits, e.FracBits)
	}
	return nil
}

// ExactHead is the number of int64 slots in front of the fixed-point
// gradients in Network.IGrads, where a caller keeps the step's totals so
// that they travel in the same all-reduce as the gradients of the first
// layer (the last bucket backward completes).
const ExactHead = 8

// ExactSums are what an exact pass produces besides the gradients.
type ExactSums struct {
	// Loss is the sum over blocks of RNE(2^FracBits * block loss sum).
	Loss int64
	// Correct counts the samples classified correctly.
	Correct int
	// MaxGrad is the largest |block sum| of any gradient element, NaN if
	// any was NaN (compare it with linalg.FixedLimit).
	MaxGrad float32
	// MaxLoss is the largest |block loss sum|, NaN if any was NaN.
	MaxLoss float64
}

// Add returns the sums of s and o (the maxima of their maxima).
func (s ExactSums) Add(o ExactSums) ExactSums {
	s.Loss += o.Loss
	s.Correct += o.Correct
	if o.MaxGrad > s.MaxGrad || o.MaxGrad != o.MaxGrad {
		s.MaxGrad = o.MaxGrad
	}
	if o.MaxLoss > s.MaxLoss || o.MaxLoss != o.MaxLoss {
		s.MaxLoss = o.MaxLoss
	}
	return s
}

// ExactHooks observe an exact pass. Either may be nil.
type ExactHooks struct {
	// Sums is called once every sum of the pass is final: after the first
	// layer's parameter gradients, before LayerDone(0).
	Sums func(ExactSums)
	// LayerDone is called with a layer's index once its part of IGrads is
	// final, last layer first (as BackwardHooks.LayerDone).
	LayerDone func(layer int)
}

// SetExact turns exact reduction on (e.On()) or off for the network. On,
// it allocates IGrads: ExactHead slots, then one int64 per parameter in the
// layout of Params, with views IDW and IDB in every layer.
func (n *Network) SetExact(e Exact) error {
	if !e.On() {
		n.exact, n.IGrads = Exact{}, nil
		for _, l := range n.Layers {
			l.IDW, l.IDB = nil, nil
		}
		return nil
	}
	if err := e.Validate(); err != nil {
		return err
	}
	n.exact = e
	n.IGrads = make([]int64, ExactHead+len(n.Params))
	off := ExactHead
	view := func(size int) []int64 {
		v := n.IGrads[off : off+size : off+size]
		off += size
		return v
	}
	for _, l := range n.Layers {
		l.IDW = view(l.In * l.Out)
		if l.B != nil {
			l.IDB = view(l.Out)
		}
	}
	return nil
}

// Exact returns the network's exact-reduction configuration (zero: off).
func (n *Network) Exact() Exact { return n.exact }

// ExactGrads returns the fixed-point gradients, IGrads without its head,
// in the layout of Grads.
func (n *Network) ExactGrads() []int64 { return n.IGrads[ExactHead:] }

// GradientsExact runs forward and backward on the samples x with their
// labels and writes their fixed-point gradient sums into IGrads after the
// head: with accumulate it adds them to what is there (a later
// micro-batch), otherwise it overwrites it (no clearing pass needed). The
// rows are cut into blocks of Exact.Block from the first, so a caller that
// wants the same integers as another split passes whole blocks. SetExact
// must have been called. With no rows it only reports: zero sums, every
// layer done (and the gradients cleared unless accumulate).
func (n *Network) GradientsExact(x []float32, labels []int32, accumulate bool, h ExactHooks) ExactSums {
	if !n.exact.On() {
		panic("model: GradientsExact without SetExact")
	}
	rows := len(labels)
	if rows == 0 {
		if !accumulate {
			clear(n.ExactGrads())
		}
		if h.Sums != nil {
			h.Sums(ExactSums{})
		}
		for i := len(n.Layers) - 1; i >= 0 && h.LayerDone != nil; i-- {
			h.LayerDone(i)
		}
		return ExactSums{}
	}
	blk, frac := n.exact.Block, n.exact.FracBits
	out := n.Forward(x, rows)
	last := n.Layers[len(n.Layers)-1]
	k := last.Out
	d := grow(n.delta[0], rows*k)
	n.delta[0] = d
	var s ExactSums
	// The loss of each block, summed in float64 in row order, then fixed.
	scale := math.Ldexp(1, frac)
	for r0 := 0; r0 < rows; r0 += blk {
		r1 := min(r0+blk, rows)
		l := n.Config.Loss.evaluate(last.t[r0*k:r1*k], out[r0*k:r1*k], labels[r0:r1], k, d[r0*k:r1*k])
		if a := math.Abs(l); a > s.MaxLoss || a != a {
			s.MaxLoss = a
		}
		if !math.IsNaN(l) && !math.IsInf(l, 0) && math.Abs(l*scale) < 1<<62 {
			s.Loss += int64(math.RoundToEven(l * scale))
		}
	}
	s.Correct = n.countCorrect(out, labels)
	pre := n.Config.Loss.fused()
	for i := len(n.Layers) - 1; i >= 0; i-- {
		l := n.Layers[i]
		var dIn []float32
		if i > 0 {
			kk := (len(n.Layers) - i) % 2
			dIn = grow(n.delta[kk], rows*l.In)
			n.delta[kk] = dIn
		}
		mx := l.backwardExact(n.pool, d, pre, accumulate, n.exact)
		if mx > s.MaxGrad || mx != mx {
			s.MaxGrad = mx
		}
		if i == 0 && h.Sums != nil {
			h.Sums(s)
		}
		if h.LayerDone != nil {
			h.LayerDone(i)
		}
		if dIn != nil {
			// dx = dt W: [rows, Out] x [Out, In], per row as in backward.
			n.pool.Sgemm(false, false, rows, l.In, l.Out, 1, d[:rows*l.Out], l.Out, l.W, l.In, 0, dIn[:rows*l.In], l.In)
		}
		d, pre = dIn, false
	}
	return s
}

// backwardExact is backward with exact reduction: dt as in backward, then
// the fixed-point block sums of dW = dt^T x and db = column sums of dt are
// added to IDW and IDB (with accumulate) or written over them. It returns
// the largest |block sum| (NaN if any). It does not compute dL/dx; the
// caller does, after reporting the layer.
func (d *Dense) backwardExact(p *linalg.Pool, dOut []float32, preActivation, accumulate bool, e Exact) float32 {
	rows := d.rows
	dt := dOut[:rows*d.Out]
	if !preActivation {
		parallelFor(p, rows, d.Out, func(r0, r1 int) {
			lo, hi := r0*d.Out, r1*d.Out
			d.Act.backward(d.t[lo:hi], d.out[lo:hi], dt[lo:hi], d.Out)
		})
	}
	gemm := p.FixedGemmTNSet
	if accumulate {
		gemm = p.FixedGemmTN
	}
	mx := gemm(d.Out, d.In, rows, e.Block, dt, d.Out, d.x, d.In, e.FracBits, d.IDW, d.In)
	if d.IDB != nil {
		if !accumulate {
			clear(d.IDB)
		}
		if b := linalg.FixedColumnSums(rows, d.Out, e.Block, dt, d.Out, e.FracBits, d.IDB); b > mx || b != b {
			mx = b
		}
	}
	return mx
}
