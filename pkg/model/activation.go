package model

import (
	"fmt"
	"math"
	"strings"
)

// Activation is the nonlinearity phi of a dense block.
type Activation int

// The activations a block can apply.
const (
	Identity Activation = iota
	Sigmoid
	Tanh
	ReLU
	LeakyReLU
	Softmax
)

var activationNames = [...]string{"identity", "sigmoid", "tanh", "relu", "leaky-relu", "softmax"}

// String returns the name used on the command line and in model files.
func (a Activation) String() string {
	if a < 0 || int(a) >= len(activationNames) {
		return fmt.Sprintf("activation(%d)", int(a))
	}
	return activationNames[a]
}

// ParseActivation maps a command-line name to an Activation.
func ParseActivation(s string) (Activation, error) {
	norm := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "_", "-")
	if norm == "leakyrelu" || norm == "lrelu" {
		norm = "leaky-relu"
	}
	if norm == "linear" || norm == "none" {
		norm = "identity"
	}
	for i, n := range activationNames {
		if n == norm {
			return Activation(i), nil
		}
	}
	return 0, fmt.Errorf("unknown activation %q (want one of %s)", s, strings.Join(activationNames[:], ", "))
}

// leakySlope is the negative-side slope of LeakyReLU (PyTorch's default).
const leakySlope = 0.01

// apply computes out = phi(t) for a batch of rows of width w. out may alias t
// for every activation.
func (a Activation) apply(t, out []float32, w int) {
	switch a {
	case Identity:
		if &out[0] != &t[0] {
			copy(out, t)
		}
	case Sigmoid:
		for i, v := range t {
			out[i] = sigmoid32(v)
		}
	case Tanh:
		for i, v := range t {
			out[i] = float32(math.Tanh(float64(v)))
		}
	case ReLU:
		reluForward(t, out)
	case LeakyReLU:
		for i, v := range t {
			if v > 0 {
				out[i] = v
			} else {
				out[i] = leakySlope * v
			}
		}
	case Softmax:
		for r := 0; r+w <= len(t); r += w {
			softmaxRow(t[r:r+w], out[r:r+w])
		}
	default:
		panic(fmt.Sprintf("model: unknown activation %d", int(a)))
	}
}

// backward turns dL/d(out) into dL/dt in place in d, given the block's
// pre-activation t and output out (rows of width w). Subgradients at kinks are
// 0: ReLU'(0) = 0 and LeakyReLU'(0) = slope.
func (a Activation) backward(t, out, d []float32, w int) {
	switch a {
	case Identity:
	case Sigmoid:
		for i, y := range out {
			d[i] *= y * (1 - y)
		}
	case Tanh:
		for i, y := range out {
			d[i] *= 1 - y*y
		}
	case ReLU:
		reluBackward(t, d)
	case LeakyReLU:
		for i, v := range t {
			if !(v > 0) {
				d[i] *= leakySlope
			}
		}
	case Softmax:
		// Jacobian-vector product of softmax: dt_i = y_i (d_i - sum_j d_j y_j).
		for r := 0; r+w <= len(out); r += w {
			y, dr := out[r:r+w], d[r:r+w]
			var dot float64
			for j := range y {
				dot += float64(dr[j]) * float64(y[j])
			}
			for j := range y {
				dr[j] = y[j] * (dr[j] - float32(dot))
			}
		}
	default:
		panic(fmt.Sprintf("model: unknown activation %d", int(a)))
	}
}

func sigmoid32(v float32) float32 {
	return float32(sigmoid64(float64(v)))
}

func sigmoid64(v float64) float64 {
	if v >= 0 {
		return 1 / (1 + math.Exp(-v))
	}
	e := math.Exp(v)
	return e / (1 + e)
}

// softmaxRow writes the numerically stable softmax of t into out.
func softmaxRow(t, out []float32) {
	m := float32(math.Inf(-1))
	for _, v := range t {
		if v > m {
			m = v
		}
	}
	var sum float64
	for i, v := range t {
		e := math.Exp(float64(v - m))
		out[i] = float32(e)
		sum += e
	}
	inv := 1 / sum
	for i := range out {
		out[i] = float32(float64(out[i]) * inv)
	}
}

// reluForward writes max(t, 0) into out without branches: the sign bit of t
// selects the value or zero (a data-dependent branch would mispredict about
// half the time on ReLU inputs). -0 becomes +0; NaN stays NaN.
func reluForward(t, out []float32) {
	out = out[:len(t)]
	for i, v := range t {
		u := math.Float32bits(v)
		keep := uint32(int32(^u) >> 31) // all ones when the sign bit is 0
		out[i] = math.Float32frombits(u & keep)
	}
}

// reluBackward zeroes d where t <= 0 (including -0: ReLU'(0) = 0, the
// subgradient chosen at the kink), without branches.
func reluBackward(t, d []float32) {
	d = d[:len(t)]
	for i, v := range t {
		s := int32(math.Float32bits(v))
		keep := uint32((-s &^ s) >> 31) // all ones exactly when s > 0
		d[i] = math.Float32frombits(math.Float32bits(d[i]) & keep)
	}
}
