package model

import (
	"fmt"
	"math"
)

// GradCheckOptions tunes CheckGradients.
type GradCheckOptions struct {
	// Step is the central-difference step h (default 1e-2; see CheckGradients).
	Step float64
	// AbsTol and RelTol: a coordinate passes when
	// |analytic - numeric| <= AbsTol + RelTol*max(|analytic|, |numeric|)
	// (defaults 1e-4 and 1e-2).
	AbsTol, RelTol float64
	// CheckInputs also checks dL/dx (criterion A of the first block).
	CheckInputs bool
}

// GradCheckResult reports a gradient check.
type GradCheckResult struct {
	Checked int     // coordinates compared
	Skipped int     // coordinates next to a kink (ReLU at 0, hinge at margin 1)
	MaxErr  float64 // worst |analytic-numeric| / (AbsTol + RelTol*scale), < 1 passes
	Worst   string  // where MaxErr occurred
}

// CheckGradients compares the analytic gradient of the summed loss over the
// batch (x, labels) with central finite differences
// (L(p+h) - L(p-h)) / 2h for every parameter and, if asked, every input.
//
// The network computes in float32, so the loss carries a relative rounding
// error of about 1e-7 and a difference quotient with step h an error of about
// 1e-7*|L|/h, while the truncation error of the central difference is
// O(h^2 * L”'). h = 1e-2 balances the two at about 1e-4 relative to the
// gradient's scale, so RelTol = 1e-2 leaves a margin of two orders of
// magnitude and still flags a factor of 2 (error 100%) or a transposed index
// (a different coordinate's value) as a failure.
//
// Near a kink of a piecewise-linear function (ReLU, leaky ReLU, hinge) the
// difference quotient mixes both sides and is not a derivative; a coordinate
// whose perturbation moves any pre-activation or hinge margin across its kink
// is skipped (counted in Skipped).
func CheckGradients(n *Network, x []float32, labels []int32, opt GradCheckOptions) (GradCheckResult, error) {
	n.ZeroGrad()
	var dx []float32
	if opt.CheckInputs {
		dx = make([]float32, len(x))
	}
	n.ForwardBackward(x, labels, dx)
	analytic := append([]float32(nil), n.Grads...)
	return compareGradients(n, x, labels, analytic, dx, opt)
}

// compareGradients compares a given analytic gradient (parameter layout, and
// dx when not nil) with finite differences of the network's loss.
func compareGradients(n *Network, x []float32, labels []int32, analytic, dx []float32, opt GradCheckOptions) (GradCheckResult, error) {
	var res GradCheckResult
	if opt.Step == 0 {
		opt.Step = 1e-2
	}
	if opt.AbsTol == 0 {
		opt.AbsTol = 1e-4
	}
	if opt.RelTol == 0 {
		opt.RelTol = 1e-2
	}

	// loss returns the loss and a fingerprint of which side of every kink
	// each sample is on.
	loss := func() (float64, uint64) {
		l, _ := n.Evaluate(x, labels)
		return l, n.kinkPattern(labels)
	}
	check := func(name string, buf []float32, grad []float32) {
		for i := range buf {
			orig := buf[i]
			_, k0 := loss()
			buf[i] = orig + float32(opt.Step)
			hp := float64(buf[i] - orig) // the step actually taken in float32
			lp, kp := loss()
			buf[i] = orig - float32(opt.Step)
			hm := float64(orig - buf[i])
			lm, km := loss()
			buf[i] = orig
			if kp != k0 || km != k0 {
				res.Skipped++
				continue
			}
			num := (lp - lm) / (hp + hm)
			a := float64(grad[i])
			scale := math.Max(math.Abs(a), math.Abs(num))
			e := math.Abs(a-num) / (opt.AbsTol + opt.RelTol*scale)
			res.Checked++
			if e > res.MaxErr {
				res.MaxErr = e
				res.Worst = fmt.Sprintf("%s[%d]: analytic %.6g, numeric %.6g", name, i, a, num)
			}
		}
	}
	for li, l := range n.Layers {
		off := offsetOf(n.Params, l.W)
		check(fmt.Sprintf("layers.%d.weight", li), l.W, analytic[off:off+len(l.W)])
		if l.B != nil {
			off := offsetOf(n.Params, l.B)
			check(fmt.Sprintf("layers.%d.bias", li), l.B, analytic[off:off+len(l.B)])
		}
	}
	if dx != nil {
		check("input", x, dx)
	}
	if res.MaxErr > 1 {
		return res, fmt.Errorf("gradient check failed at %s (error %.3g of tolerance)", res.Worst, res.MaxErr)
	}
	return res, nil
}

// offsetOf returns the index of sub's first element within buf.
func offsetOf(buf, sub []float32) int {
	for i := range buf {
		if &buf[i] == &sub[0] {
			return i
		}
	}
	panic("model: slice is not a view of the buffer")
}

// kinkPattern fingerprints, after a forward pass, the side of its kink that
// every ReLU / leaky ReLU pre-activation and every hinge margin is on.
func (n *Network) kinkPattern(labels []int32) uint64 {
	h := uint64(14695981039346656037)
	mix := func(b bool) {
		v := uint64(0)
		if b {
			v = 1
		}
		h = (h ^ v) * 1099511628211
	}
	for _, l := range n.Layers {
		if l.Act == ReLU || l.Act == LeakyReLU {
			for _, v := range l.t {
				mix(v > 0)
			}
		}
	}
	if n.Config.Loss == Hinge {
		out := n.Layers[len(n.Layers)-1].out
		for r, c := range labels {
			mix(1-n.Config.Loss.target(c, 0, 1)*float64(out[r]) > 0)
		}
	}
	return h
}
