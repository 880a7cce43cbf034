package engine

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
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

// TestBuckets: the cut of 784-1000-1000-1 (mnist12) for several caps; the
// buckets tile the buffer from the end backwards, whole layers each.
func TestBuckets(t *testing.T) {
	net, err := model.New(model.Config{Inputs: 784, Hidden: []int{1000, 1000}, Outputs: 1, Activation: model.ReLU, Output: model.Sigmoid, Loss: model.BCE, Bias: true, Init: model.He}, 1)
	if err != nil {
		t.Fatal(err)
	}
	l0, l1, l2 := 784*1000+1000, 1000*1000+1000, 1000+1
	end := l0 + l1 + l2 + Trailing
	for _, c := range []struct {
		name string
		cap  int
		want []Bucket
	}{
		{"off", 0, []Bucket{{0, end, 0, 2}}},
		{"1MiB: a bucket per layer", 1 << 20, []Bucket{{l0 + l1, end, 2, 2}, {l0, l0 + l1, 1, 1}, {0, l0, 0, 0}}},
		{"4.01MB: the last two layers share", 4*(l1+l2+Trailing) + 3, []Bucket{{l0, end, 1, 2}, {0, l0, 0, 0}}},
		{"just below that: apart", 4*(l1+l2+Trailing) - 1, []Bucket{{l0 + l1, end, 2, 2}, {l0, l0 + l1, 1, 1}, {0, l0, 0, 0}}},
		{"25MiB: one", 25 << 20, []Bucket{{0, end, 0, 2}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Buckets(net, c.cap)
			if len(got) != len(c.want) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("bucket %d: got %+v, want %+v", i, got[i], c.want[i])
				}
			}
		})
	}
}

// TestShardGradientsHooked: the hooked pass gives the same bits as the
// plain one, reports the totals before any layer and the layers last
// first, and a layer's gradients are final when it is reported.
func TestShardGradientsHooked(t *testing.T) {
	ds := data.Gaussian(1)
	idx := make([]int, ds.Rows())
	for i := range idx {
		idx[i] = i
	}
	plain, hooked := testNet(t), testNet(t)
	var b Buffers
	want := ShardGradients(plain, ds, idx, &b)
	var order []int
	var seen Totals
	snap := map[int][]float32{}
	got := ShardGradientsHooked(hooked, ds, idx, &b, func(t Totals) {
		seen = t
		order = append(order, -1)
	}, func(layer int) {
		order = append(order, layer)
		l := hooked.Layers[layer]
		snap[layer] = append(append([]float32(nil), l.DW...), l.DB...)
	})
	if got != want || seen != want {
		t.Fatalf("totals: hooked %+v, reported %+v, plain %+v", got, seen, want)
	}
	if len(order) != 3 || order[0] != -1 || order[1] != 1 || order[2] != 0 {
		t.Fatalf("hook order %v, want [-1 1 0] (totals, then the last layer first)", order)
	}
	for i := range plain.Grads {
		if math.Float32bits(plain.Grads[i]) != math.Float32bits(hooked.Grads[i]) {
			t.Fatalf("gradient %d: hooked %g, plain %g", i, hooked.Grads[i], plain.Grads[i])
		}
	}
	for layer, s := range snap {
		l := hooked.Layers[layer]
		final := append(append([]float32(nil), l.DW...), l.DB...)
		for i := range s {
			if s[i] != final[i] {
				t.Fatalf("layer %d element %d changed after it was reported done", layer, i)
			}
		}
	}
}

func TestKeptInputsAndColumns(t *testing.T) {
	kept, err := KeptInputs([]byte{0b0000_0101, 0b1}, 9, nil)
	if err != nil || len(kept) != 6 || kept[0] != 1 || kept[1] != 3 || kept[5] != 7 {
		t.Fatalf("KeptInputs = %v, %v; want [1 3 4 5 6 7]", kept, err)
	}
	if k, err := KeptInputs(nil, 9, nil); k != nil || err != nil {
		t.Fatalf("empty bitmap: %v, %v", k, err)
	}
	if k, err := KeptInputs([]byte{0, 0}, 9, nil); k != nil || err != nil {
		t.Fatalf("nothing zero: %v, %v; want nil (send everything)", k, err)
	}
	if _, err := KeptInputs([]byte{0}, 9, nil); err == nil {
		t.Fatal("a 1-byte bitmap for 9 features was accepted")
	}
	m := []float32{1, 2, 3, 4, 5, 6, 7, 8} // 2 x 4
	packed := make([]float32, 4)           // 2 x 2
	PackColumns(packed, m, 2, 4, []int32{1, 3})
	if want := []float32{2, 4, 6, 8}; fmt.Sprint(packed) != fmt.Sprint(want) {
		t.Fatalf("packed %v, want %v", packed, want)
	}
	out := []float32{9, 9, 9, float32(math.Copysign(0, -1)), 9, 9, 9, 9}
	UnpackColumns(out, []float32{20, 40, 60, 80}, 2, 4, []int32{1, 3}, true)
	if want := []float32{0, 20, 0, 40, 0, 60, 0, 80}; fmt.Sprint(out) != fmt.Sprint(want) || math.Signbit(float64(out[0])) {
		t.Fatalf("unpacked %v, want %v with +0", out, want)
	}
	keep := []float32{9, 9, 9, 9}
	UnpackColumns(keep, []float32{1, 2}, 1, 4, []int32{0, 2}, false)
	if want := []float32{1, 9, 2, 9}; fmt.Sprint(keep) != fmt.Sprint(want) {
		t.Fatalf("unpacked without zeroing %v, want %v", keep, want)
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

// TestShardGradientsKHooked: accumulated, the hooked pass reports the
// whole shard's totals once, then every layer once, last first, during the
// last micro-batch's backward, when that layer's gradient sum is final;
// the gradients are ShardGradientsK's bit for bit.
func TestShardGradientsKHooked(t *testing.T) {
	ds := data.Gaussian(1)
	idx := make([]int, 23)
	for i := range idx {
		idx[i] = 3 * i
	}
	plain, hooked := testNet(t), testNet(t)
	var b1, b2 Buffers
	want := ShardGradientsK(plain, ds, idx, 4, &b1)
	var order []int
	var seen Totals
	snap := map[int][]float32{}
	got := ShardGradientsKHooked(hooked, ds, idx, 4, &b2, func(tot Totals) { order = append(order, -1); seen = tot }, func(layer int) {
		order = append(order, layer)
		l := hooked.Layers[layer]
		snap[layer] = append(append([]float32(nil), l.DW...), l.DB...)
	})
	if got != want || seen != want {
		t.Fatalf("totals: hooked %+v, reported %+v, plain %+v", got, seen, want)
	}
	if len(order) != 3 || order[0] != -1 || order[1] != 1 || order[2] != 0 {
		t.Fatalf("hook order %v, want [-1 1 0] (totals once, then the last layer first, once each)", order)
	}
	for i := range plain.Grads {
		if math.Float32bits(plain.Grads[i]) != math.Float32bits(hooked.Grads[i]) {
			t.Fatalf("gradient %d: hooked %g, plain %g", i, hooked.Grads[i], plain.Grads[i])
		}
	}
	for layer, s := range snap {
		l := hooked.Layers[layer]
		final := append(append([]float32(nil), l.DW...), l.DB...)
		for i := range s {
			if s[i] != final[i] {
				t.Fatalf("layer %d element %d changed after it was reported done", layer, i)
			}
		}
	}
}

// TestColumnsMatchNaive: packing and unpacking by runs of consecutive
// columns gives what an element-by-element gather and scatter gives, for
// random column sets (runs of every length, at both edges).
func TestColumnsMatchNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 200 {
		rows, cols := 1+rng.IntN(4), 1+rng.IntN(40)
		var kept []int32
		for j := range cols {
			if rng.IntN(3) > 0 {
				kept = append(kept, int32(j))
			}
		}
		m := make([]float32, rows*cols)
		for i := range m {
			m[i] = float32(i + 1)
		}
		packed := make([]float32, rows*len(kept))
		PackColumns(packed, m, rows, cols, kept)
		out := make([]float32, rows*cols)
		for i := range out {
			out[i] = -1
		}
		UnpackColumns(out, packed, rows, cols, kept, true)
		for r := range rows {
			for i, j := range kept {
				if packed[r*len(kept)+i] != m[r*cols+int(j)] {
					t.Fatalf("trial %d: packed[%d][%d] = %v, want column %d's %v", trial, r, i, packed[r*len(kept)+i], j, m[r*cols+int(j)])
				}
			}
			isKept := map[int]bool{}
			for _, j := range kept {
				isKept[int(j)] = true
			}
			for j := range cols {
				want := float32(0)
				if isKept[j] {
					want = m[r*cols+j]
				}
				if got := out[r*cols+j]; got != want || math.Signbit(float64(got)) {
					t.Fatalf("trial %d: unpacked[%d][%d] = %v, want %v", trial, r, j, got, want)
				}
			}
		}
	}
}
