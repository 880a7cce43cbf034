package model

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strconv"
	"strings"

	"github.com/ringtrain/ringtrain/pkg/linalg"
)

// Config describes a network: its layer widths, activations, loss, bias and
// initialization. Two processes with equal configs (Config.String) build
// networks with the same parameter layout.
type Config struct {
	Inputs     int        // width of the input
	Hidden     []int      // widths of the hidden layers, may be empty
	Outputs    int        // width of the output layer
	Activation Activation // phi of the hidden layers
	Output     Activation // phi of the output layer
	Loss       Loss
	Bias       bool
	Init       Init
}

// Validate reports the first problem with the configuration.
func (c Config) Validate() error {
	if c.Inputs <= 0 {
		return fmt.Errorf("inputs must be positive, got %d", c.Inputs)
	}
	for i, h := range c.Hidden {
		if h <= 0 {
			return fmt.Errorf("hidden layer %d must have a positive width, got %d", i, h)
		}
	}
	if c.Outputs <= 0 {
		return fmt.Errorf("outputs must be positive, got %d", c.Outputs)
	}
	if c.Activation < Identity || c.Activation > Softmax {
		return fmt.Errorf("unknown hidden activation %d", int(c.Activation))
	}
	if c.Init < Uniform || c.Init > He {
		return fmt.Errorf("unknown init %d", int(c.Init))
	}
	if err := c.Loss.checkOutput(c.Output, c.Outputs); err != nil {
		return err
	}
	return nil
}

// Widths returns the widths of every layer from input to output.
func (c Config) Widths() []int {
	w := make([]int, 0, len(c.Hidden)+2)
	w = append(w, c.Inputs)
	w = append(w, c.Hidden...)
	return append(w, c.Outputs)
}

// String is the canonical one-line description of the configuration, used in
// model files and to compare the configurations of cluster members.
func (c Config) String() string {
	ws := make([]string, 0, len(c.Hidden)+2)
	for _, w := range c.Widths() {
		ws = append(ws, strconv.Itoa(w))
	}
	return fmt.Sprintf("layers=%s activation=%s output=%s loss=%s bias=%t init=%s",
		strings.Join(ws, "-"), c.Activation, c.Output, c.Loss, c.Bias, c.Init)
}

// Diff returns a human-readable list of the fields in which c and o differ,
// or "" when they are equal.
func (c Config) Diff(o Config) string {
	a, b := strings.Fields(c.String()), strings.Fields(o.String())
	var diffs []string
	for i := range a {
		if i < len(b) && a[i] != b[i] {
			diffs = append(diffs, fmt.Sprintf("%s (here %s)", b[i], strings.SplitN(a[i], "=", 2)[1]))
		}
	}
	return strings.Join(diffs, ", ")
}

// NumParams returns the length of the parameter buffer of the configuration.
func (c Config) NumParams() int {
	w := c.Widths()
	n := 0
	for i := 0; i+1 < len(w); i++ {
		n += w[i] * w[i+1]
		if c.Bias {
			n += w[i+1]
		}
	}
	return n
}

// Network is a chain of dense blocks ending in a loss layer, with all
// parameters in one buffer and all gradients in another of the same layout.
// A Network is not safe for concurrent use. It computes on one thread unless
// SetThreads says otherwise; the results are bit-identical for any number of
// threads.
type Network struct {
	Config Config
	Layers []*Dense
	Params []float32
	Grads  []float32
	// IGrads holds the fixed-point gradient sums of exact reduction
	// (SetExact): ExactHead slots, then the layout of Grads. Nil when off.
	IGrads []int64

	pool  *linalg.Pool // GEMM workspaces and threads
	delta [2][]float32 // ping-pong buffers for dL/d(activations)
	exact Exact        // exact reduction (zero: off)
}

// New builds a network and initializes its weights from seed.
func New(cfg Config, seed uint64) (*Network, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid network configuration: %w", err)
	}
	n := &Network{
		Config: cfg,
		Params: make([]float32, cfg.NumParams()),
		Grads:  make([]float32, cfg.NumParams(), cfg.NumParams()+GradTail),
		pool:   linalg.NewPool(1),
	}
	w := cfg.Widths()
	off := 0
	view := func(size int) ([]float32, []float32) {
		p, g := n.Params[off:off+size:off+size], n.Grads[off:off+size:off+size]
		off += size
		return p, g
	}
	for i := 0; i+1 < len(w); i++ {
		d := &Dense{In: w[i], Out: w[i+1], Act: cfg.Activation}
		if i+2 == len(w) {
			d.Act = cfg.Output
		}
		d.W, d.DW = view(d.In * d.Out)
		if cfg.Bias {
			d.B, d.DB = view(d.Out)
		}
		cfg.Init.fill(d.W, d.In, d.Out, seed, i)
		n.Layers = append(n.Layers, d)
	}
	return n, nil
}

// GradTail is the spare capacity behind Grads: callers may extend Grads by up
// to GradTail elements (Grads[:len(Grads)+k]) to carry a few scalars, such as
// the loss sum and sample count, in the same all-reduce as the gradients.
const GradTail = 8

// ZeroGrad clears the gradient buffer.
func (n *Network) ZeroGrad() { clear(n.Grads) }

// Forward runs the chain on rows samples (x is rows x Inputs) and returns the
// output layer's activations (rows x Outputs), owned by the network.
func (n *Network) Forward(x []float32, rows int) []float32 {
	if len(x) < rows*n.Config.Inputs {
		panic(fmt.Sprintf("model: input has %d values, want %d rows x %d", len(x), rows, n.Config.Inputs))
	}
	h := x
	for _, l := range n.Layers {
		h = l.Forward(n.pool, h, rows)
	}
	return h
}

// Evaluate returns the summed loss and the number of correct predictions on
// the samples x (len(labels) rows) without touching the gradients.
func (n *Network) Evaluate(x []float32, labels []int32) (lossSum float64, correct int) {
	rows := len(labels)
	if rows == 0 {
		return 0, 0
	}
	out := n.Forward(x, rows)
	last := n.Layers[len(n.Layers)-1]
	lossSum = n.Config.Loss.evaluate(last.t, out, labels, last.Out, nil)
	return lossSum, n.countCorrect(out, labels)
}

// ForwardBackward runs the forward pass on the samples x with their class
// labels, adds the gradient of the summed loss to Grads and returns the loss
// sum and the number of correct predictions. If dx is not nil it receives
// dL/dx (used by gradient checks); otherwise the input gradient of the first
// block is not computed.
func (n *Network) ForwardBackward(x []float32, labels []int32, dx []float32) (lossSum float64, correct int) {
	return n.forwardBackward(x, labels, dx, true)
}

// Gradients is ForwardBackward that overwrites Grads with the gradient of
// the summed loss instead of adding to it (no ZeroGrad needed before it).
func (n *Network) Gradients(x []float32, labels []int32) (lossSum float64, correct int) {
	if len(labels) == 0 {
		n.ZeroGrad()
		return 0, 0
	}
	return n.forwardBackward(x, labels, nil, false)
}

// BackwardHooks observe a backward pass as it goes, so that a caller can
// start moving finished gradients while the earlier layers still compute
// (the bucketed all-reduce of a worker). Either may be nil.
type BackwardHooks struct {
	// Loss is called once the batch's loss sum and correct count are known,
	// before the backward pass starts.
	Loss func(lossSum float64, correct int)
	// LayerDone is called with a layer's index as soon as its parameter
	// gradients are final, last layer first; the network does not touch
	// that layer's part of Grads again in this pass (it still computes the
	// layer's input gradient, which reads only the parameters).
	LayerDone func(layer int)
}

// GradientsHooked is Gradients that calls h as the pass goes. With an empty
// batch it clears Grads and reports every layer done.
func (n *Network) GradientsHooked(x []float32, labels []int32, h BackwardHooks) (lossSum float64, correct int) {
	if len(labels) == 0 {
		n.ZeroGrad()
		if h.Loss != nil {
			h.Loss(0, 0)
		}
		for i := len(n.Layers) - 1; i >= 0 && h.LayerDone != nil; i-- {
			h.LayerDone(i)
		}
		return 0, 0
	}
	return n.forwardBackwardHooked(x, labels, nil, false, h)
}

// ForwardBackwardHooked is ForwardBackward (adding to Grads, no input
// gradient) that calls h as the pass goes: the last micro-batch of an
// accumulated shard, whose layers are final when reported.
func (n *Network) ForwardBackwardHooked(x []float32, labels []int32, h BackwardHooks) (lossSum float64, correct int) {
	return n.forwardBackwardHooked(x, labels, nil, true, h)
}

func (n *Network) forwardBackward(x []float32, labels []int32, dx []float32, accumulate bool) (lossSum float64, correct int) {
	return n.forwardBackwardHooked(x, labels, dx, accumulate, BackwardHooks{})
}

func (n *Network) forwardBackwardHooked(x []float32, labels []int32, dx []float32, accumulate bool, h BackwardHooks) (lossSum float64, correct int) {
	rows := len(labels)
	if rows == 0 {
		return 0, 0
	}
	out := n.Forward(x, rows)
	last := n.Layers[len(n.Layers)-1]
	d := grow(n.delta[0], rows*last.Out)
	n.delta[0] = d
	lossSum = n.Config.Loss.evaluate(last.t, out, labels, last.Out, d)
	correct = n.countCorrect(out, labels)
	if h.Loss != nil {
		h.Loss(lossSum, correct)
	}
	pre := n.Config.Loss.fused()
	for i := len(n.Layers) - 1; i >= 0; i-- {
		l := n.Layers[i]
		var dIn []float32
		if i > 0 {
			k := (len(n.Layers) - i) % 2
			dIn = grow(n.delta[k], rows*l.In)
			n.delta[k] = dIn
		} else if dx != nil {
			dIn = dx
		}
		var done func()
		if h.LayerDone != nil {
			layer := i
			done = func() { h.LayerDone(layer) }
		}
		l.backward(n.pool, d, pre, dIn, accumulate, done)
		d, pre = dIn, false
	}
	return lossSum, correct
}

func (n *Network) countCorrect(out []float32, labels []int32) int {
	k := n.Config.Outputs
	c := 0
	for r, y := range labels {
		if n.Config.Loss.predict(out[r*k:(r+1)*k]) == y {
			c++
		}
	}
	return c
}

// Kernel names the matrix-multiply kernel in use.
func (n *Network) Kernel() string { return n.pool.Kernel() }

// SetThreads makes the network compute on threads threads (at least 1; New
// starts with 1): its GEMMs are split among them by output tiles, its
// elementwise loops by contiguous ranges, and reductions stay serial, so
// every value is bit-identical to the one-thread result. It replaces the
// network's Pool; give the new one to the optimizer with
// Optimizer.SetPool(n.Pool()) so that its updates use the same threads.
func (n *Network) SetThreads(threads int) {
	threads = max(threads, 1)
	if threads == n.pool.Threads() {
		return
	}
	old := n.pool
	n.pool = linalg.NewPool(threads)
	// Closing is safe even if an optimizer still holds the old pool: a
	// closed pool keeps working on one thread, with the same results.
	old.Close()
}

// Threads returns the number of threads the network computes on.
func (n *Network) Threads() int { return n.pool.Threads() }

// Pool returns the network's thread pool, to share with an Optimizer.
func (n *Network) Pool() *linalg.Pool { return n.pool }

// ErrNonFinite is returned when a buffer holds NaN or Inf.
var ErrNonFinite = errors.New("non-finite value")

// CheckFinite returns an error naming the first NaN or Inf in buf.
func CheckFinite(name string, buf []float32) error {
	return CheckFinitePool(nil, name, buf)
}

// CheckFinitePool is CheckFinite scanning on p's threads (nil: one).
func CheckFinitePool(p *linalg.Pool, name string, buf []float32) error {
	if p.AllFinite(buf) {
		return nil
	}
	for i, v := range buf {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%s[%d] = %v: %w", name, i, v, ErrNonFinite)
		}
	}
	return nil
}

// Checksum returns a CRC-32C of the parameter bytes, cheap enough to compare
// replicas every few steps.
func Checksum(buf []float32) uint32 {
	tab := crc32.MakeTable(crc32.Castagnoli)
	var b [16384]byte
	var crc uint32
	for len(buf) > 0 {
		m := min(len(buf), len(b)/4)
		for i, v := range buf[:m] {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		crc = crc32.Update(crc, tab, b[:4*m])
		buf = buf[m:]
	}
	return crc
}

// Digest returns the SHA-256 of the parameter bytes (little-endian
// float32): the replicas' check compares it, so that equal digests mean
// bit-identical parameters, not merely a matching 32-bit checksum.
func Digest(buf []float32) [32]byte {
	h := sha256.New()
	var b [16384]byte
	for len(buf) > 0 {
		m := min(len(buf), len(b)/4)
		for i, v := range buf[:m] {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		h.Write(b[:4*m])
		buf = buf[m:]
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// DiffStrings compares two canonical configuration strings (Config.String)
// and lists the fields that differ as "field: a vs b".
func DiffStrings(a, b string) string {
	fa, fb := strings.Fields(a), strings.Fields(b)
	var diffs []string
	for i := 0; i < max(len(fa), len(fb)); i++ {
		var x, y string
		if i < len(fa) {
			x = fa[i]
		}
		if i < len(fb) {
			y = fb[i]
		}
		if x != y {
			diffs = append(diffs, fmt.Sprintf("%s vs %s", x, y))
		}
	}
	if len(diffs) == 0 {
		return "no difference"
	}
	return strings.Join(diffs, ", ")
}
