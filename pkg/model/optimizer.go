package model

import (
	"fmt"

	"github.com/ringtrain/ringtrain/pkg/linalg"
	"math"
	"strings"
)

// OptimizerKind names an update rule.
type OptimizerKind int

// The update rules; definitions follow PyTorch (see the package documentation).
const (
	SGD OptimizerKind = iota
	Momentum
	Adam
)

var optimizerNames = [...]string{"sgd", "momentum", "adam"}

// String returns the name used on the command line and in checkpoints.
func (k OptimizerKind) String() string {
	if k < 0 || int(k) >= len(optimizerNames) {
		return fmt.Sprintf("optimizer(%d)", int(k))
	}
	return optimizerNames[k]
}

// ParseOptimizer maps a command-line name to an OptimizerKind.
func ParseOptimizer(s string) (OptimizerKind, error) {
	norm := strings.ToLower(strings.TrimSpace(s))
	for i, n := range optimizerNames {
		if n == norm {
			return OptimizerKind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown optimizer %q (want one of %s)", s, strings.Join(optimizerNames[:], ", "))
}

// OptimizerConfig holds the hyper-parameters of an update rule.
type OptimizerConfig struct {
	Kind     OptimizerKind
	LR       float64 // learning rate eta
	Momentum float64 // mu, for Momentum (and SGD when > 0 turns it into Momentum)
	Beta1    float64 // Adam, default 0.9
	Beta2    float64 // Adam, default 0.999
	Eps      float64 // Adam, default 1e-8
	// WeightDecay is lambda: L2 regularization for SGD and Momentum (g +=
	// lambda p, as PyTorch's weight_decay), decoupled for Adam (p *= 1 - lr
	// lambda before the update, PyTorch's AdamW).
	WeightDecay float64
	// Nesterov uses Nesterov momentum (Momentum only): p -= lr (g + mu v).
	Nesterov bool
}

// Validate reports the first invalid hyper-parameter.
func (c OptimizerConfig) Validate() error {
	switch {
	case c.Kind < SGD || c.Kind > Adam:
		return fmt.Errorf("unknown optimizer %d", int(c.Kind))
	case !(c.LR > 0) || math.IsInf(c.LR, 0):
		return fmt.Errorf("learning rate must be a positive number, got %v", c.LR)
	case c.Momentum < 0 || c.Momentum >= 1 || math.IsNaN(c.Momentum):
		return fmt.Errorf("momentum must be in [0, 1), got %v", c.Momentum)
	case c.Kind == Adam && (c.Beta1 < 0 || c.Beta1 >= 1 || c.Beta2 < 0 || c.Beta2 >= 1):
		return fmt.Errorf("adam betas must be in [0, 1), got %v and %v", c.Beta1, c.Beta2)
	case c.Kind == Adam && !(c.Eps > 0):
		return fmt.Errorf("adam eps must be positive, got %v", c.Eps)
	case c.WeightDecay < 0 || math.IsNaN(c.WeightDecay) || math.IsInf(c.WeightDecay, 0):
		return fmt.Errorf("weight decay must be 0 or positive, got %v", c.WeightDecay)
	case c.Nesterov && c.Kind != Momentum:
		return fmt.Errorf("nesterov needs the momentum optimizer, not %s", c.Kind)
	}
	return nil
}

// WithDefaults fills the Adam constants and turns SGD with momentum into
// Momentum.
func (c OptimizerConfig) WithDefaults() OptimizerConfig {
	if c.Kind == SGD && c.Momentum > 0 {
		c.Kind = Momentum
	}
	if c.Kind == Momentum && c.Momentum == 0 {
		c.Momentum = 0.9
	}
	if c.Beta1 == 0 {
		c.Beta1 = 0.9
	}
	if c.Beta2 == 0 {
		c.Beta2 = 0.999
	}
	if c.Eps == 0 {
		c.Eps = 1e-8
	}
	return c
}

// Optimizer applies an update rule to a parameter buffer. Its whole state is
// the step count and one flat buffer (State), so that it can be checkpointed
// and shipped to a joining worker.
type Optimizer struct {
	Config OptimizerConfig
	// Steps counts the updates applied so far (Adam's t).
	Steps int64
	// State is empty for SGD, the velocity for Momentum, and m followed by v
	// for Adam; each of the parameter buffer's length.
	State []float32

	pool *linalg.Pool // threads for Step; nil means one
}

// SetPool makes Step split its elementwise update among p's threads
// (usually the network's, Network.Pool). Every parameter is updated by the
// same operations, so the result is bit-identical for any thread count. A
// nil p means one thread, the default.
func (o *Optimizer) SetPool(p *linalg.Pool) { o.pool = p }

// NewOptimizer returns an optimizer for n parameters.
func NewOptimizer(cfg OptimizerConfig, n int) (*Optimizer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid optimizer: %w", err)
	}
	o := &Optimizer{Config: cfg}
	switch cfg.Kind {
	case Momentum:
		o.State = make([]float32, n)
	case Adam:
		o.State = make([]float32, 2*n)
	}
	return o, nil
}

// StateLen returns the length State must have for n parameters.
func (o *Optimizer) StateLen(n int) int {
	switch o.Config.Kind {
	case Momentum:
		return n
	case Adam:
		return 2 * n
	}
	return 0
}

// Step applies one update: params <- params - lr * rule(grads * scale).
// scale lets callers pass gradient sums with scale = 1/count.
func (o *Optimizer) Step(params, grads []float32, scale float32) {
	if len(params) != len(grads) {
		panic(fmt.Sprintf("model: %d params but %d grads", len(params), len(grads)))
	}
	o.Steps++
	lr := float32(o.Config.LR)
	n := len(params)
	switch o.Config.Kind {
	case SGD:
		if wd := float32(o.Config.WeightDecay); wd != 0 {
			parallelFor(o.pool, n, 1, func(lo, hi int) { sgdDecayStep(params[lo:hi], grads[lo:hi], lr, scale, wd) })
			break
		}
		// p - (lr*scale)*g, rounded as p + (-(lr*scale))*g: the same bits.
		a := -(lr * scale)
		parallelFor(o.pool, n, 1, func(lo, hi int) {
			linalg.Saxpy(a, grads[lo:hi], params[lo:hi])
		})
	case Momentum:
		mu := float32(o.Config.Momentum)
		wd := float32(o.Config.WeightDecay)
		v := o.State[:n]
		nesterov := o.Config.Nesterov
		parallelFor(o.pool, n, 1, func(lo, hi int) {
			momentumStep(params[lo:hi], grads[lo:hi], v[lo:hi], mu, lr, scale, wd, nesterov)
		})
	case Adam:
		m, v := o.State[:n], o.State[n:2*n]
		t := float64(o.Steps)
		bc1 := 1 - math.Pow(o.Config.Beta1, t)
		bc2 := 1 - math.Pow(o.Config.Beta2, t)
		// Every constant is computed in float64 and rounded once: 1 -
		// float32(0.999) is 1.3e-5 away from 0.001, a bias in v that
		// float64 PyTorch does not have (see TestAdamFloat32MatchesFloat64).
		c := adamConsts{
			b1: float32(o.Config.Beta1), b2: float32(o.Config.Beta2),
			ob1: float32(1 - o.Config.Beta1), ob2: float32(1 - o.Config.Beta2),
			stepSize: float32(o.Config.LR / bc1),
			sqrtBC2:  float32(math.Sqrt(bc2)),
			eps:      float32(o.Config.Eps),
			scale:    scale,
		}
		// AdamW: the decay is decoupled from the gradient, p *= 1 - lr lambda.
		c.decay = float32(1 - o.Config.LR*o.Config.WeightDecay)
		parallelFor(o.pool, n, 1, func(lo, hi int) {
			adamStep(params[lo:hi], grads[lo:hi], m[lo:hi], v[lo:hi], c)
		})
	}
}

// sgdDecayStep is the SGD update with L2 weight decay of one range:
// p -= lr (g + lambda p), as PyTorch's SGD(weight_decay=lambda).
func sgdDecayStep(params, grads []float32, lr, scale, wd float32) {
	for i, g := range grads {
		params[i] -= lr * (g*scale + wd*params[i])
	}
}

// momentumStep is the momentum update of one range of parameters, with
// PyTorch's weight decay (g += lambda p) and Nesterov variant
// (p -= lr (g + mu v) instead of p -= lr v).
func momentumStep(params, grads, v []float32, mu, lr, scale, wd float32, nesterov bool) {
	for i, g := range grads {
		g *= scale
		if wd != 0 {
			g += wd * params[i]
		}
		vi := mu*v[i] + g
		v[i] = vi
		if nesterov {
			params[i] -= lr * (g + mu*vi)
		} else {
			params[i] -= lr * vi
		}
	}
}

// adamConsts are the per-step constants of the Adam update: the betas, one
// minus each (rounded from float64), lr / (1 - beta1^t), sqrt(1 - beta2^t).
type adamConsts struct {
	b1, b2, ob1, ob2, stepSize, sqrtBC2, eps, scale float32
	decay                                           float32 // 1 - lr lambda (AdamW), 1 without decay
}

// adamStep is the Adam update of one range of parameters, in PyTorch's
// order of operations: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g g;
// p -= stepSize * (m / (sqrt(v) / sqrt(bc2) + eps)).
func adamStep(params, grads, m, v []float32, c adamConsts) {
	for i, g := range grads {
		g *= c.scale
		mi := c.b1*m[i] + c.ob1*g
		vi := c.b2*v[i] + c.ob2*(g*g)
		m[i], v[i] = mi, vi
		denom := float32(math.Sqrt(float64(vi)))/c.sqrtBC2 + c.eps
		p := params[i]
		if c.decay != 1 {
			p *= c.decay
		}
		params[i] = p - c.stepSize*(mi/denom)
	}
}
