package model_test

import (
	"math"
	"testing"

	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/model"
)

// ref221 is a float64 reference of the 2-2-1 network without bias: tanh
// hidden layer, sigmoid output, MSE (per sample (y-t)^2, averaged over the
// batch), trained full batch with Adam as PyTorch defines it.
type ref221 struct {
	w1   [2][2]float64 // [hidden][input]
	w2   [2]float64
	m, v [6]float64
	t    int
}

func (r *ref221) flat() [6]float64 {
	return [6]float64{r.w1[0][0], r.w1[0][1], r.w1[1][0], r.w1[1][1], r.w2[0], r.w2[1]}
}

func (r *ref221) set(p [6]float64) {
	r.w1 = [2][2]float64{{p[0], p[1]}, {p[2], p[3]}}
	r.w2 = [2]float64{p[4], p[5]}
}

func (r *ref221) step(xs [][2]float64, ys []float64, lr float64) {
	var g [6]float64
	for i, x := range xs {
		var h [2]float64
		for j := range 2 {
			h[j] = math.Tanh(r.w1[j][0]*x[0] + r.w1[j][1]*x[1])
		}
		y := 1 / (1 + math.Exp(-(r.w2[0]*h[0] + r.w2[1]*h[1])))
		dy := 2 * (y - ys[i]) / float64(len(xs))
		dz := dy * y * (1 - y)
		for j := range 2 {
			g[4+j] += dz * h[j]
			dh := dz * r.w2[j] * (1 - h[j]*h[j])
			g[2*j] += dh * x[0]
			g[2*j+1] += dh * x[1]
		}
	}
	const b1, b2, eps = 0.9, 0.999, 1e-8
	r.t++
	p := r.flat()
	bc1, bc2 := 1-math.Pow(b1, float64(r.t)), 1-math.Pow(b2, float64(r.t))
	for i := range p {
		r.m[i] = b1*r.m[i] + (1-b1)*g[i]
		r.v[i] = b2*r.v[i] + (1-b2)*g[i]*g[i]
		p[i] -= lr / bc1 * r.m[i] / (math.Sqrt(r.v[i])/math.Sqrt(bc2) + eps)
	}
	r.set(p)
}

// TestAdamFloat32MatchesFloat64: 100 full-batch Adam steps (lr 0.05) of
// the 2-2-1 tanh/sigmoid network without bias on the 160 training rows of
// the Gaussian set, our float32 trainer against a float64 reference from
// the same initial weights, for 12 initializations. PyTorch in float32 ends
// within 3.2e-6 (max |dw|) of float64 PyTorch on such a case. Measured here:
// at most 2.4e-6 (seed 1), typically 5e-7; with Adam's constants rounded in
// float32 (1 - float32(0.999) is 1.3e-5 off 0.001, a bias in v), the error
// was 2.6e-6 to 2.3e-5, 6 of the 12 seeds above 5e-6. 5e-6 separates the
// two.
func TestAdamFloat32MatchesFloat64(t *testing.T) {
	for seed := uint64(1); seed <= 12; seed++ {
		if worst := adamVsFloat64(t, seed); worst > 5e-6 {
			t.Errorf("seed %d: float32 Adam ends %.3g from the float64 reference, want <= 5e-6", seed, worst)
		}
	}
}

// adamVsFloat64 returns max |w32 - w64| after 100 steps from seed's
// initialization.
func adamVsFloat64(t *testing.T, seed uint64) float64 {
	t.Helper()
	tr, _, err := data.Load("gaussian", "", data.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Rows() != 160 {
		t.Fatalf("the Gaussian training split has %d rows, want 160", tr.Rows())
	}
	cfg := model.Config{Inputs: 2, Hidden: []int{2}, Outputs: 1, Activation: model.Tanh, Output: model.Sigmoid, Loss: model.MSE, Bias: false, Init: model.Xavier}
	net, err := model.New(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	opt, err := model.NewOptimizer(model.OptimizerConfig{Kind: model.Adam, LR: 0.05}, len(net.Params))
	if err != nil {
		t.Fatal(err)
	}
	var ref ref221
	w1, w2 := net.Layers[0].W, net.Layers[1].W // [out, in] row-major
	ref.set([6]float64{float64(w1[0]), float64(w1[1]), float64(w1[2]), float64(w1[3]), float64(w2[0]), float64(w2[1])})

	idx := make([]int, tr.Rows())
	for i := range idx {
		idx[i] = i
	}
	x := make([]float32, 2*len(idx))
	labels := make([]int32, len(idx))
	tr.Gather(idx, x, labels)
	xs := make([][2]float64, len(idx))
	ys := make([]float64, len(idx))
	for i := range idx {
		xs[i] = [2]float64{float64(x[2*i]), float64(x[2*i+1])}
		ys[i] = float64(labels[i])
	}
	for range 100 {
		net.Gradients(x, labels)
		opt.Step(net.Params, net.Grads, 1/float32(len(idx)))
		ref.step(xs, ys, 0.05)
	}
	got := [6]float32{w1[0], w1[1], w1[2], w1[3], w2[0], w2[1]}
	want := ref.flat()
	var worst float64
	for i := range got {
		worst = math.Max(worst, math.Abs(float64(got[i])-want[i]))
	}
	t.Logf("seed %d: max |w32 - w64| after 100 Adam steps = %.3g", seed, worst)
	return worst
}
