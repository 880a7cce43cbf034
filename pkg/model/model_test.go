package model

import (
	"crypto/sha256"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestOptimizerStepsMatchHandComputedValues(t *testing.T) {
	// One parameter p = 1 with gradient sums g over a batch of 2 (scale 1/2),
	// so the mean gradient is g/2. Expected values worked out by hand from
	// PyTorch's definitions.
	tests := []struct {
		name  string
		cfg   OptimizerConfig
		grads []float32 // gradient sums of successive steps
		want  []float64 // parameter after each step
	}{
		{"sgd", OptimizerConfig{Kind: SGD, LR: 0.1}, []float32{2, 4},
			[]float64{1 - 0.1*1, 0.9 - 0.1*2}},
		{"momentum", OptimizerConfig{Kind: Momentum, LR: 0.1, Momentum: 0.9}, []float32{2, 4, 0},
			// v1 = 1, p = 0.9; v2 = 0.9 + 2 = 2.9, p = 0.61; v3 = 2.61, p = 0.349
			[]float64{0.9, 0.61, 0.349}},
		{"adam", OptimizerConfig{Kind: Adam, LR: 0.01}, []float32{2, 4},
			// t=1: m = 0.1, v = 0.001, mhat = 1, vhat = 1 -> p = 1 - 0.01*1/(1+1e-8)
			// t=2: g = 2, m = 0.09 + 0.2 = 0.29, v = 0.000999 + 0.004 = 0.004999,
			// mhat = 0.29/0.19, vhat = 0.004999/0.001999 -> step 0.01*1.526316/1.581375
			[]float64{1 - 0.01/(1+1e-8), 1 - 0.01/(1+1e-8) - 0.01*(0.29/0.19)/(math.Sqrt(0.004999/0.001999)+1e-8)}},
		{"sgd, weight decay", OptimizerConfig{Kind: SGD, LR: 0.1, WeightDecay: 0.1}, []float32{2, 4},
			// d = g + 0.1 p: p = 1 - 0.1*1.1 = 0.89; d = 2 + 0.089, p = 0.89 - 0.2089
			[]float64{0.89, 0.6811}},
		{"momentum, weight decay", OptimizerConfig{Kind: Momentum, LR: 0.1, Momentum: 0.9, WeightDecay: 0.1}, []float32{2, 4},
			// v1 = 1.1, p = 0.89; g = 2.089, v2 = 0.99 + 2.089 = 3.079, p = 0.89 - 0.3079
			[]float64{0.89, 0.5821}},
		{"nesterov", OptimizerConfig{Kind: Momentum, LR: 0.1, Momentum: 0.9, Nesterov: true}, []float32{2, 4, 0},
			// v1 = 1, p = 1 - 0.1*(1 + 0.9); v2 = 2.9, p -= 0.1*(2 + 2.61); v3 = 2.61, p -= 0.1*2.349
			[]float64{0.81, 0.349, 0.1141}},
		{"adamw", OptimizerConfig{Kind: Adam, LR: 0.01, WeightDecay: 0.1}, []float32{2, 4},
			// p *= 1 - 0.01*0.1 before each Adam step (the Adam steps as above)
			[]float64{0.999 - 0.01/(1+1e-8), (0.999-0.01/(1+1e-8))*0.999 - 0.01*(0.29/0.19)/(math.Sqrt(0.004999/0.001999)+1e-8)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := NewOptimizer(tc.cfg, 1)
			if err != nil {
				t.Fatal(err)
			}
			p := []float32{1}
			for i, g := range tc.grads {
				o.Step(p, []float32{g}, 0.5)
				if math.Abs(float64(p[0])-tc.want[i]) > 1e-6 {
					t.Fatalf("step %d: p = %.8f, want %.8f", i+1, p[0], tc.want[i])
				}
			}
		})
	}
}

func TestOptimizerValidation(t *testing.T) {
	tests := []struct {
		cfg  OptimizerConfig
		want string
	}{
		{OptimizerConfig{Kind: SGD, LR: 0}, "learning rate"},
		{OptimizerConfig{Kind: SGD, LR: math.NaN()}, "learning rate"},
		{OptimizerConfig{Kind: Momentum, LR: 0.1, Momentum: 1.5}, "momentum"},
		{OptimizerConfig{Kind: Adam, LR: 0.1, Beta1: 1}, "betas"},
		{OptimizerConfig{Kind: SGD, LR: 0.1, WeightDecay: -1}, "weight decay"},
		{OptimizerConfig{Kind: Adam, LR: 0.1, Nesterov: true}, "nesterov"},
	}
	for _, tc := range tests {
		if _, err := NewOptimizer(tc.cfg, 3); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error about %s", tc.cfg, err, tc.want)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	ok := Config{Inputs: 2, Hidden: []int{2}, Outputs: 1, Activation: Tanh, Output: Sigmoid, Loss: BCE}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"valid", func(*Config) {}, ""},
		{"zero inputs", func(c *Config) { c.Inputs = 0 }, "inputs"},
		{"zero hidden", func(c *Config) { c.Hidden = []int{3, 0} }, "hidden layer 1"},
		{"bce on tanh", func(c *Config) { c.Output = Tanh }, "bce needs a single sigmoid"},
		{"bce on 2 outputs", func(c *Config) { c.Outputs = 2 }, "bce needs a single sigmoid"},
		{"ce on sigmoid", func(c *Config) { c.Loss = CrossEntropy; c.Outputs = 3 }, "ce needs a softmax"},
		{"hinge on sigmoid", func(c *Config) { c.Loss = Hinge }, "hinge"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mutate(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestLossValues(t *testing.T) {
	tests := []struct {
		name   string
		loss   Loss
		t, out []float32
		labels []int32
		k      int
		want   float64
		grad   []float32
	}{
		{"bce at logit 0", BCE, []float32{0}, []float32{0.5}, []int32{1}, 1, math.Ln2, []float32{-0.5}},
		{"bce large logit is finite", BCE, []float32{100}, []float32{1}, []int32{0}, 1, 100, []float32{1}},
		{"mse one output", MSE, []float32{0}, []float32{0.25}, []int32{1}, 1, 0.5625, []float32{-1.5}},
		{"mse one-hot", MSE, nil, []float32{0.5, 0.5}, []int32{0}, 2, 0.5, []float32{-1, 1}},
		{"ce uniform", CrossEntropy, []float32{1, 1, 1}, nil, []int32{2}, 3, math.Log(3), []float32{1. / 3, 1. / 3, -2. / 3}},
		{"hinge inside margin", Hinge, nil, []float32{0.25}, []int32{1}, 1, 0.75, []float32{-1}},
		{"hinge negative class", Hinge, nil, []float32{0.25}, []int32{0}, 1, 1.25, []float32{1}},
		{"hinge beyond margin", Hinge, nil, []float32{2}, []int32{1}, 1, 0, []float32{0}},
		{"hinge at kink uses subgradient 0", Hinge, nil, []float32{1}, []int32{1}, 1, 0, []float32{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := make([]float32, len(tc.grad))
			got := tc.loss.evaluate(tc.t, tc.out, tc.labels, tc.k, d)
			if math.Abs(got-tc.want) > 1e-6 {
				t.Fatalf("loss %v, want %v", got, tc.want)
			}
			for i := range d {
				if math.Abs(float64(d[i]-tc.grad[i])) > 1e-6 {
					t.Fatalf("grad %v, want %v", d, tc.grad)
				}
			}
		})
	}
}

func TestReLUSubgradientAtZeroIsZero(t *testing.T) {
	tt := []float32{-1, 0, 2}
	d := []float32{5, 5, 5}
	ReLU.backward(tt, nil, d, 3)
	if d[0] != 0 || d[1] != 0 || d[2] != 5 {
		t.Fatalf("relu backward = %v, want [0 0 5]", d)
	}
}

// TestLearnsXOR trains the lecture's 2-2-1 shape (with a slightly wider
// hidden layer for a reliable start) on XOR to zero classification error.
func TestLearnsXOR(t *testing.T) {
	x := []float32{0, 0, 0, 1, 1, 0, 1, 1}
	y := []int32{0, 1, 1, 0}
	tests := []struct {
		name string
		cfg  Config
		opt  OptimizerConfig
	}{
		{"tanh-sigmoid-mse-sgd", Config{Inputs: 2, Hidden: []int{4}, Outputs: 1, Activation: Tanh, Output: Sigmoid, Loss: MSE, Bias: true, Init: Xavier}, OptimizerConfig{Kind: SGD, LR: 2}},
		{"relu-sigmoid-bce-adam", Config{Inputs: 2, Hidden: []int{8}, Outputs: 1, Activation: ReLU, Output: Sigmoid, Loss: BCE, Bias: true, Init: He}, OptimizerConfig{Kind: Adam, LR: 0.05}},
		{"tanh-identity-hinge-momentum", Config{Inputs: 2, Hidden: []int{4}, Outputs: 1, Activation: Tanh, Output: Identity, Loss: Hinge, Bias: true, Init: Xavier}, OptimizerConfig{Kind: Momentum, LR: 0.1, Momentum: 0.9}},
		{"tanh-softmax-ce-sgd", Config{Inputs: 2, Hidden: []int{4}, Outputs: 2, Activation: Tanh, Output: Softmax, Loss: CrossEntropy, Bias: true, Init: Xavier}, OptimizerConfig{Kind: SGD, LR: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(tc.cfg, 3)
			if err != nil {
				t.Fatal(err)
			}
			o, err := NewOptimizer(tc.opt, len(n.Params))
			if err != nil {
				t.Fatal(err)
			}
			var loss float64
			for step := 0; step < 2000; step++ {
				n.ZeroGrad()
				loss, _ = n.ForwardBackward(x, y, nil)
				o.Step(n.Params, n.Grads, 0.25)
			}
			_, correct := n.Evaluate(x, y)
			if correct != 4 {
				t.Fatalf("XOR: %d/4 correct after training, final loss %.4f", correct, loss/4)
			}
		})
	}
}

func TestModelFileRoundTripAndShapeErrors(t *testing.T) {
	cfg := Config{Inputs: 3, Hidden: []int{4}, Outputs: 1, Activation: ReLU, Output: Sigmoid, Loss: BCE, Bias: true, Init: He}
	a, _ := New(cfg, 1)
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := a.SaveFile(path, map[string]string{"epochs": "1"}); err != nil {
		t.Fatal(err)
	}
	b, _ := New(cfg, 2)
	if err := b.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	for i := range a.Params {
		if a.Params[i] != b.Params[i] {
			t.Fatalf("param %d: %v after round trip, want %v", i, b.Params[i], a.Params[i])
		}
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"wider hidden layer", Config{Inputs: 3, Hidden: []int{5}, Outputs: 1, Activation: ReLU, Output: Sigmoid, Loss: BCE, Bias: true}, "layers.0.weight has shape [4 3], the network needs [5 3]"},
		{"no bias", Config{Inputs: 3, Hidden: []int{4}, Outputs: 1, Activation: ReLU, Output: Sigmoid, Loss: BCE}, "layers.0.bias does not belong"},
		{"extra layer", Config{Inputs: 3, Hidden: []int{4, 4}, Outputs: 1, Activation: ReLU, Output: Sigmoid, Loss: BCE, Bias: true}, "layers.1.weight has shape"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.cfg, 9)
			if err != nil {
				t.Fatal(err)
			}
			before := append([]float32(nil), c.Params...)
			err = c.LoadFile(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			for i := range before {
				if before[i] != c.Params[i] {
					t.Fatal("a failed load changed the parameters")
				}
			}
		})
	}
}

func TestConfigDiffNamesTheField(t *testing.T) {
	a := Config{Inputs: 784, Hidden: []int{1000, 1000}, Outputs: 1, Activation: ReLU, Output: Sigmoid, Loss: BCE, Bias: true, Init: He}
	b := a
	b.Hidden = []int{500}
	b.Bias = false
	got := a.Diff(b)
	if !strings.Contains(got, "layers=784-500-1 (here 784-1000-1000-1)") || !strings.Contains(got, "bias=false (here true)") {
		t.Fatalf("Diff = %q", got)
	}
	if a.Diff(a) != "" {
		t.Fatalf("Diff of equal configs = %q", a.Diff(a))
	}
}

func TestInitScales(t *testing.T) {
	tests := []struct {
		init    Init
		in, out int
		wantStd float64
	}{
		{Uniform, 100, 100, 1 / math.Sqrt(12)},
		{Xavier, 300, 100, math.Sqrt(6.0/400) / math.Sqrt(3)},
		{He, 400, 100, math.Sqrt(2.0 / 400)},
	}
	for _, tc := range tests {
		w := make([]float32, tc.in*tc.out)
		tc.init.fill(w, tc.in, tc.out, 1, 0)
		var s, s2 float64
		for _, v := range w {
			s += float64(v)
			s2 += float64(v) * float64(v)
		}
		mean := s / float64(len(w))
		std := math.Sqrt(s2/float64(len(w)) - mean*mean)
		if math.Abs(std-tc.wantStd) > 0.03*tc.wantStd || math.Abs(mean) > 0.05*tc.wantStd {
			t.Errorf("%s: mean %.4g std %.4g, want mean 0 std %.4g", tc.init, mean, std, tc.wantStd)
		}
	}
}

func TestCheckFiniteNamesTheIndex(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	tests := []struct {
		buf  []float32
		want string
	}{
		{[]float32{1, 2, 3, 4, 5}, ""},
		{[]float32{1, 2, 3, 4, nan}, "g[4] = NaN"},
		{[]float32{1, -inf, 3}, "g[1] = -Inf"},
		{[]float32{inf}, "g[0] = +Inf"},
		{[]float32{3e38, 3e38, 3e38}, ""},
	}
	for _, tc := range tests {
		err := CheckFinite("g", tc.buf)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckFinite(%v) = %v, want %q", tc.buf, err, tc.want)
		}
	}
}

func TestReLUEdgeValues(t *testing.T) {
	negZero := float32(math.Copysign(0, -1))
	nan := float32(math.NaN())
	in := []float32{-2, negZero, 0, 1e-45, 3, float32(math.Inf(1)), float32(math.Inf(-1)), -1e-45}
	out := make([]float32, len(in))
	ReLU.apply(in, out, len(in))
	want := []float32{0, 0, 0, 1e-45, 3, float32(math.Inf(1)), 0, 0}
	for i := range want {
		if out[i] != want[i] || math.Signbit(float64(out[i])) {
			t.Fatalf("relu(%v) = %v, want %v", in[i], out[i], want[i])
		}
	}
	d := []float32{1, 1, 1, 1, 1, 1, 1, 1}
	ReLU.backward(in, nil, d, len(in))
	wantD := []float32{0, 0, 0, 1, 1, 1, 0, 0}
	for i := range wantD {
		if d[i] != wantD[i] {
			t.Fatalf("relu'(%v) * 1 = %v, want %v", in[i], d[i], wantD[i])
		}
	}
	out2 := []float32{0}
	ReLU.apply([]float32{nan}, out2, 1)
	if !math.IsNaN(float64(out2[0])) {
		t.Fatalf("relu(NaN) = %v, want NaN (so the non-finite check sees it)", out2[0])
	}
}

func TestGradientsOverwriteEqualsZeroThenAccumulate(t *testing.T) {
	cfg := Config{Inputs: 5, Hidden: []int{7}, Outputs: 3, Activation: ReLU, Output: Softmax, Loss: CrossEntropy, Bias: true, Init: He}
	n, _ := New(cfg, 4)
	x, y := randomBatch(9, 6, 5, 3)
	for i := range n.Grads {
		n.Grads[i] = 123 // garbage that Gradients must overwrite
	}
	l1, c1 := n.Gradients(x, y)
	got := append([]float32(nil), n.Grads...)
	n.ZeroGrad()
	l2, c2 := n.ForwardBackward(x, y, nil)
	for i := range got {
		if got[i] != n.Grads[i] {
			t.Fatalf("grad %d: %v (overwrite) vs %v (zero + accumulate)", i, got[i], n.Grads[i])
		}
	}
	if l1 != l2 || c1 != c2 {
		t.Fatalf("loss/correct %v/%d vs %v/%d", l1, c1, l2, c2)
	}
}

// TestDigestSeesEveryBit: the replicas' digest is the SHA-256 of the
// parameters' little-endian bytes, so flipping the lowest bit of any one
// parameter changes it.
func TestDigestSeesEveryBit(t *testing.T) {
	p := []float32{0.5, -1.25, 3, 1e-20, 7}
	d := Digest(p)
	want := sha256.Sum256([]byte{0, 0, 0, 0x3f, 0, 0, 0xa0, 0xbf, 0, 0, 0x40, 0x40, 0x08, 0xe5, 0x3c, 0x1e, 0, 0, 0xe0, 0x40})
	if d != want {
		t.Fatalf("Digest = %x, want the SHA-256 of the little-endian bytes %x", d, want)
	}
	for i := range p {
		q := slices.Clone(p)
		q[i] = math.Float32frombits(math.Float32bits(q[i]) ^ 1)
		if Digest(q) == d {
			t.Fatalf("flipping the last bit of parameter %d left the digest unchanged", i)
		}
	}
}
