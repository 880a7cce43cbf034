package model

import (
	"fmt"
	"math"
	"strings"
)

// Loss is the loss layer at the end of the chain.
type Loss int

// The supported losses; see the package documentation for their definitions.
const (
	MSE Loss = iota
	BCE
	CrossEntropy
	Hinge
)

var lossNames = [...]string{"mse", "bce", "ce", "hinge"}

// String returns the name used on the command line and in model files.
func (l Loss) String() string {
	if l < 0 || int(l) >= len(lossNames) {
		return fmt.Sprintf("loss(%d)", int(l))
	}
	return lossNames[l]
}

// ParseLoss maps a command-line name to a Loss.
func ParseLoss(s string) (Loss, error) {
	norm := strings.ToLower(strings.TrimSpace(s))
	switch norm {
	case "cross-entropy", "crossentropy", "softmax-ce", "nll":
		norm = "ce"
	case "binary-cross-entropy", "logistic":
		norm = "bce"
	}
	for i, n := range lossNames {
		if n == norm {
			return Loss(i), nil
		}
	}
	return 0, fmt.Errorf("unknown loss %q (want one of %s)", s, strings.Join(lossNames[:], ", "))
}

// checkOutput reports whether the loss can sit on an output layer with the
// given activation and width, and why not.
func (l Loss) checkOutput(out Activation, width int) error {
	switch l {
	case BCE:
		if out != Sigmoid || width != 1 {
			return fmt.Errorf("loss bce needs a single sigmoid output (got %d %s outputs)", width, out)
		}
	case CrossEntropy:
		if out != Softmax || width < 2 {
			return fmt.Errorf("loss ce needs a softmax output with at least 2 units (got %d %s outputs)", width, out)
		}
	case Hinge:
		if width != 1 {
			return fmt.Errorf("loss hinge needs a single output (got %d)", width)
		}
		if out == Softmax || out == Sigmoid {
			return fmt.Errorf("loss hinge needs an output in (-inf, inf) or (-1, 1), use identity or tanh (got %s)", out)
		}
	case MSE:
		if out == Softmax && width < 2 {
			return fmt.Errorf("a softmax output needs at least 2 units (got %d)", width)
		}
	default:
		return fmt.Errorf("unknown loss %d", int(l))
	}
	return nil
}

// fused reports whether the loss layer differentiates with respect to the
// output block's pre-activation t (sigmoid+BCE, softmax+CE) instead of its
// output.
func (l Loss) fused() bool { return l == BCE || l == CrossEntropy }

// target returns the regression target of output unit j for a sample of
// class c when the output has width k.
func (l Loss) target(c int32, j, k int) float64 {
	if k == 1 {
		if l == Hinge {
			if c == 1 {
				return 1
			}
			return -1
		}
		return float64(c)
	}
	if int(c) == j {
		return 1
	}
	return 0
}

// evaluate returns the summed loss of rows of width k and, when d is not nil,
// writes the gradient of that sum into d: with respect to t when the loss is
// fused, otherwise with respect to out.
func (l Loss) evaluate(t, out []float32, labels []int32, k int, d []float32) float64 {
	var sum float64
	n := len(labels)
	switch l {
	case MSE:
		for r := 0; r < n; r++ {
			for j := 0; j < k; j++ {
				i := r*k + j
				diff := float64(out[i]) - l.target(labels[r], j, k)
				sum += diff * diff
				if d != nil {
					d[i] = float32(2 * diff)
				}
			}
		}
	case BCE:
		for r := 0; r < n; r++ {
			x := float64(t[r])
			y := float64(labels[r])
			sum += math.Max(x, 0) - x*y + math.Log1p(math.Exp(-math.Abs(x)))
			if d != nil {
				d[r] = float32(sigmoid64(x) - y)
			}
		}
	case CrossEntropy:
		for r := 0; r < n; r++ {
			row := t[r*k : (r+1)*k]
			c := int(labels[r])
			m := math.Inf(-1)
			for _, v := range row {
				m = math.Max(m, float64(v))
			}
			var z float64
			for _, v := range row {
				z += math.Exp(float64(v) - m)
			}
			logZ := m + math.Log(z)
			sum += logZ - float64(row[c])
			if d != nil {
				for j, v := range row {
					g := math.Exp(float64(v) - logZ)
					if j == c {
						g--
					}
					d[r*k+j] = float32(g)
				}
			}
		}
	case Hinge:
		for r := 0; r < n; r++ {
			y := l.target(labels[r], 0, 1)
			margin := 1 - y*float64(out[r])
			g := 0.0
			if margin > 0 {
				sum += margin
				g = -y
			}
			// At margin == 0 the subgradient 0 is used.
			if d != nil {
				d[r] = float32(g)
			}
		}
	default:
		panic(fmt.Sprintf("model: unknown loss %d", int(l)))
	}
	return sum
}

// predict returns the predicted class of one output row.
func (l Loss) predict(out []float32) int32 {
	if len(out) == 1 {
		threshold := float32(0.5)
		if l == Hinge {
			threshold = 0
		}
		if out[0] > threshold {
			return 1
		}
		return 0
	}
	best := 0
	for j, v := range out {
		if v > out[best] {
			best = j
		}
	}
	return int32(best)
}
