package model

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// randomBatch returns rows samples of width in, drawn from N(0, 1), and class
// labels in [0, classes).
func randomBatch(seed uint64, rows, in, classes int) ([]float32, []int32) {
	rng := rand.New(rand.NewPCG(seed, 7))
	x := make([]float32, rows*in)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	y := make([]int32, rows)
	for i := range y {
		y[i] = int32(rng.IntN(classes))
	}
	return x, y
}

func TestGradientsMatchFiniteDifferences(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"tanh-sigmoid-mse lecture 2-2-1 no bias", Config{Inputs: 2, Hidden: []int{2}, Outputs: 1, Activation: Tanh, Output: Sigmoid, Loss: MSE, Init: Xavier}},
		{"tanh-sigmoid-mse lecture 2-2-1 bias", Config{Inputs: 2, Hidden: []int{2}, Outputs: 1, Activation: Tanh, Output: Sigmoid, Loss: MSE, Bias: true, Init: Xavier}},
		{"relu-sigmoid-bce", Config{Inputs: 5, Hidden: []int{7, 4}, Outputs: 1, Activation: ReLU, Output: Sigmoid, Loss: BCE, Bias: true, Init: He}},
		{"leaky-softmax-ce", Config{Inputs: 4, Hidden: []int{6}, Outputs: 3, Activation: LeakyReLU, Output: Softmax, Loss: CrossEntropy, Bias: true, Init: He}},
		{"sigmoid-identity-hinge", Config{Inputs: 3, Hidden: []int{5}, Outputs: 1, Activation: Sigmoid, Output: Identity, Loss: Hinge, Bias: true, Init: Xavier}},
		{"relu-tanh-hinge", Config{Inputs: 3, Hidden: []int{5}, Outputs: 1, Activation: ReLU, Output: Tanh, Loss: Hinge, Bias: true, Init: Xavier}},
		{"identity-identity-mse multi-output", Config{Inputs: 3, Hidden: []int{4}, Outputs: 3, Activation: Identity, Output: Identity, Loss: MSE, Bias: true, Init: Uniform}},
		{"softmax hidden-sigmoid-bce", Config{Inputs: 3, Hidden: []int{4}, Outputs: 1, Activation: Softmax, Output: Sigmoid, Loss: BCE, Bias: true, Init: Xavier}},
		{"tanh-softmax-mse", Config{Inputs: 3, Hidden: []int{5}, Outputs: 4, Activation: Tanh, Output: Softmax, Loss: MSE, Bias: false, Init: Xavier}},
		{"no hidden layer logistic regression", Config{Inputs: 4, Outputs: 1, Output: Sigmoid, Loss: BCE, Bias: true, Init: Xavier}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(tc.cfg, uint64(i+1))
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range n.Layers { // non-zero biases so that their gradients matter
				for j := range l.B {
					l.B[j] = 0.1 * float32(j+1)
				}
			}
			classes := max(tc.cfg.Outputs, 2)
			x, y := randomBatch(uint64(i), 6, tc.cfg.Inputs, classes)
			res, err := CheckGradients(n, x, y, GradCheckOptions{CheckInputs: true})
			if err != nil {
				t.Fatal(err)
			}
			if res.Checked == 0 || res.Skipped > res.Checked/5 {
				t.Fatalf("checked %d coordinates, skipped %d near kinks: too few checked", res.Checked, res.Skipped)
			}
			t.Logf("checked %d, skipped %d, worst %.3g of tolerance at %s", res.Checked, res.Skipped, res.MaxErr, res.Worst)
		})
	}
}

// TestGradientCheckCatchesBugs makes sure the check has teeth: a factor of 2
// and a transposed weight matrix in the analytic gradient must both fail it.
func TestGradientCheckCatchesBugs(t *testing.T) {
	cfg := Config{Inputs: 3, Hidden: []int{4}, Outputs: 1, Activation: Tanh, Output: Sigmoid, Loss: MSE, Bias: true, Init: Xavier}
	x, y := randomBatch(3, 5, 3, 2)
	tests := []struct {
		name   string
		mutate func(n *Network)
	}{
		{"factor of two", func(n *Network) {
			for i := range n.Grads {
				n.Grads[i] *= 2
			}
		}},
		{"transposed weight gradient", func(n *Network) {
			l := n.Layers[0] // [4, 3] -> read as [3, 4]
			tr := make([]float32, len(l.DW))
			for r := 0; r < l.Out; r++ {
				for c := 0; c < l.In; c++ {
					tr[c*l.Out+r] = l.DW[r*l.In+c]
				}
			}
			copy(l.DW, tr)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(cfg, 5)
			if err != nil {
				t.Fatal(err)
			}
			err = checkWithMutation(n, x, y, tc.mutate)
			if err == nil || !strings.Contains(err.Error(), "gradient check failed") {
				t.Fatalf("a broken gradient passed the check: %v", err)
			}
		})
	}
}

// checkWithMutation computes the analytic gradient, alters it with mutate
// and compares the result with finite differences.
func checkWithMutation(n *Network, x []float32, y []int32, mutate func(*Network)) error {
	n.ZeroGrad()
	n.ForwardBackward(x, y, nil)
	mutate(n)
	broken := append([]float32(nil), n.Grads...)
	_, err := compareGradients(n, x, y, broken, nil, GradCheckOptions{})
	return err
}
