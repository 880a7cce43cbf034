package engine

import (
	"errors"
	"math"
	"testing"

	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/model"
)

func testNet(t *testing.T) *model.Network {
	t.Helper()
	net, err := model.New(model.Config{Inputs: 2, Hidden: []int{4}, Outputs: 1, Activation: model.ReLU, Output: model.Sigmoid, Loss: model.BCE, Bias: true, Init: model.He}, 1)
	if err != nil {
		t.Fatal(err)
	}
	return net
}

func TestTotalsRoundTrip(t *testing.T) {
	tail := make([]float32, Trailing)
	in := Totals{LossSum: 12.5, Correct: 30, Count: 64}
	PutTotals(tail, in)
	if got := ReadTotals(tail); got != in {
		t.Fatalf("got %+v, want %+v", got, in)
	}
	if Trailing > model.GradTail {
		t.Fatalf("%d trailing scalars do not fit the gradient buffer's spare capacity %d", Trailing, model.GradTail)
	}
	net := testNet(t)
	if b := WithTotals(net); len(b) != len(net.Grads)+Trailing || &b[0] != &net.Grads[0] {
		t.Fatal("WithTotals must extend the gradient buffer in place")
	}
}

// TestShardSumsAddUp: the gradient sums of two shards add up to the sum of
// the whole batch (within float32 rounding of a different order: 1e-5
// relative to the largest component), and so do the totals.
func TestShardSumsAddUp(t *testing.T) {
	ds := &data.Dataset{Name: "t", Features: 2, Classes: 2, Values: []float32{0.5, -1, 2, 0.3, -0.7, 1.1, 1.5, 0.2}, Labels: []int32{0, 1, 1, 0}}
	net := testNet(t)
	var b Buffers
	whole := ShardGradients(net, ds, []int{0, 1, 2, 3}, &b)
	want := append([]float32(nil), net.Grads...)
	a := ShardGradients(net, ds, []int{0, 1}, &b)
	sum := append([]float32(nil), net.Grads...)
	c := ShardGradients(net, ds, []int{2, 3}, &b)
	var scale float64
	for i := range sum {
		sum[i] += net.Grads[i]
		scale = math.Max(scale, math.Abs(float64(want[i])))
	}
	for i := range sum {
		if d := math.Abs(float64(sum[i] - want[i])); d > 1e-5*scale {
			t.Fatalf("gradient[%d]: shards add to %g, the batch gives %g", i, sum[i], want[i])
		}
	}
	if a.Count+c.Count != whole.Count || a.Correct+c.Correct != whole.Correct || math.Abs(a.LossSum+c.LossSum-whole.LossSum) > 1e-5 {
		t.Fatalf("totals %+v + %+v, want %+v", a, c, whole)
	}
	if r := ShardGradients(net, ds, nil, &b); r.Count != 0 || net.Grads[0] != 0 {
		t.Fatal("an empty shard must give zero gradients")
	}
}

func TestCheckStep(t *testing.T) {
	inf := float32(math.Inf(1))
	tests := []struct {
		name  string
		grads []float32
		loss  float64
		bad   bool
	}{
		{"finite", []float32{1, -2}, 3, false},
		{"NaN gradient", []float32{1, float32(math.NaN())}, 3, true},
		{"infinite gradient", []float32{inf, 0}, 3, true},
		{"infinite loss", []float32{1, 2}, math.Inf(1), true},
		{"loss beyond float32", []float32{1, 2}, 1e39, true},
	}
	for _, tc := range tests {
		err := CheckStep(nil, tc.grads, Totals{LossSum: tc.loss, Count: 1})
		if tc.bad != errors.Is(err, model.ErrNonFinite) {
			t.Errorf("%s: got %v", tc.name, err)
		}
	}
}

func TestEvaluateRefusesOtherWidth(t *testing.T) {
	ds := &data.Dataset{Name: "wide", Features: 3, Classes: 2, Values: make([]float32, 3), Labels: []int32{0}}
	if _, _, err := Evaluate(testNet(t), ds, &Buffers{}); err == nil {
		t.Fatal("a data set of another width was evaluated")
	}
}

// TestShardGradientsK: K micro-batches give the unsplit gradient sum within
// float32 rounding of a different summation order (1e-5 of the largest
// component, as above), the same totals, and K larger than the shard runs
// one row per piece. The pieces are checked to be real: the gather buffer
// never grows beyond the largest piece.
func TestShardGradientsK(t *testing.T) {
	vals := make([]float32, 2*11)
	labels := make([]int32, 11)
	for i := range labels {
		vals[2*i], vals[2*i+1] = float32(i)/5-1, float32(i%3)-0.8
		labels[i] = int32(i % 2)
	}
	ds := &data.Dataset{Name: "t", Features: 2, Classes: 2, Values: vals, Labels: labels}
	idx := []int{3, 0, 7, 1, 9, 4, 10, 2, 8, 5, 6}
	net := testNet(t)
	var b Buffers
	whole := ShardGradients(net, ds, idx, &b)
	want := append([]float32(nil), net.Grads...)
	var scale float64
	for _, g := range want {
		scale = math.Max(scale, math.Abs(float64(g)))
	}
	for _, tt := range []struct{ k, piece int }{{1, 11}, {2, 6}, {3, 4}, {4, 3}, {11, 1}, {50, 1}} {
		var bk Buffers
		net.ZeroGrad()
		for i := range net.Grads {
			net.Grads[i] = 7 // stale values must be overwritten, not added to
		}
		got := ShardGradientsK(net, ds, idx, tt.k, &bk)
		if got.Count != whole.Count || got.Correct != whole.Correct || math.Abs(got.LossSum-whole.LossSum) > 1e-5*math.Abs(whole.LossSum) {
			t.Errorf("k=%d: totals %+v, want %+v", tt.k, got, whole)
		}
		for i := range want {
			if d := math.Abs(float64(net.Grads[i] - want[i])); d > 1e-5*scale {
				t.Errorf("k=%d: gradient[%d] = %g, unsplit %g", tt.k, i, net.Grads[i], want[i])
				break
			}
		}
		if rows := cap(bk.labels); rows != tt.piece {
			t.Errorf("k=%d: gathered %d rows at once, want the largest piece, %d", tt.k, rows, tt.piece)
		}
	}
}
