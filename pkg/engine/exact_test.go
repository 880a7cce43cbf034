package engine

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/shard"
)

// exactNet is a small softmax network under exact reduction.
func exactNet(t *testing.T, threads, block int) *model.Network {
	t.Helper()
	net, err := model.New(model.Config{Inputs: 12, Hidden: []int{20, 9}, Outputs: 3, Activation: model.Tanh, Output: model.Softmax, Loss: model.CrossEntropy, Bias: true, Init: model.Xavier}, 7)
	if err != nil {
		t.Fatal(err)
	}
	net.SetThreads(threads)
	if err := net.SetExact(model.Exact{Block: block, FracBits: model.DefaultExactFracBits}); err != nil {
		t.Fatal(err)
	}
	return net
}

func randomSet(rows, features, classes int, seed uint64) *data.Dataset {
	r := rand.New(rand.NewPCG(seed, 1))
	ds := &data.Dataset{Name: "random", Features: features, Classes: classes, Values: make([]float32, rows*features), Labels: make([]int32, rows)}
	for i := range ds.Values {
		ds.Values[i] = float32(r.NormFloat64())
	}
	for i := range ds.Labels {
		ds.Labels[i] = int32(r.IntN(classes))
	}
	return ds
}

// TestExactSumsIndependentOfSplit is the heart of exact reduction: the
// integers a global batch sums to are the same whether one shard or N
// shards of whole blocks computed them (added as integers, as the ring
// does), on any thread count, in any micro-batching.
func TestExactSumsIndependentOfSplit(t *testing.T) {
	const block = 8
	ds := randomSet(100, 12, 3, 3)
	batch := make([]int, 0, 100)
	for i := range 100 {
		batch = append(batch, (i*37)%100)
	}
	limit := ExactLimit(model.Exact{Block: block, FracBits: model.DefaultExactFracBits}, MaxBlocks(model.Exact{Block: block}, 100, 100))
	var b Buffers
	ref := exactNet(t, 1, block)
	ShardGradientsExact(ref, ds, batch, 1, &b, limit, nil)
	want := slices.Clone(ref.IGrads)
	wantTotals, err := FinishExact(ref, limit)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ workers, threads, accumulate int }{
		{1, 3, 1}, {2, 1, 1}, {3, 2, 1}, {5, 1, 1}, {13, 1, 1}, {2, 1, 3}, {3, 2, 4},
	} {
		net := exactNet(t, tc.threads, block)
		sum := make([]int64, len(net.IGrads))
		for _, r := range shard.SplitBlocks(len(batch), tc.workers, block) {
			ShardGradientsExact(net, ds, batch[r.Start:r.End], tc.accumulate, &b, limit, nil)
			for i, v := range net.IGrads {
				sum[i] += v
			}
		}
		if !slices.Equal(sum, want) {
			for i := range sum {
				if sum[i] != want[i] {
					t.Fatalf("%+v: element %d of the summed buffer is %d, one shard gives %d", tc, i, sum[i], want[i])
				}
			}
		}
		copy(net.IGrads, sum)
		got, err := FinishExact(net, limit)
		if err != nil || got != wantTotals {
			t.Fatalf("%+v: totals %+v (%v), want %+v", tc, got, err, wantTotals)
		}
		if !slices.Equal(net.Grads, ref.Grads) {
			t.Fatalf("%+v: the converted gradients differ from one shard's", tc)
		}
	}
}

// TestExactCloseToFloat: the fixed-point sums are the float32 gradient
// within the rounding of both: each block sum is rounded once to 2^-32,
// and float32 sums of 100 terms carry a relative error around 1e-6; the
// tolerance 1e-5 of the largest component covers both with margin.
func TestExactCloseToFloat(t *testing.T) {
	ds := randomSet(100, 12, 3, 5)
	idx := make([]int, 100)
	for i := range idx {
		idx[i] = i
	}
	var b Buffers
	net := exactNet(t, 1, 16)
	limit := ExactLimit(net.Exact(), 7)
	local := ShardGradientsExact(net, ds, idx, 1, &b, limit, nil)
	tot, err := FinishExact(net, limit)
	if err != nil {
		t.Fatal(err)
	}
	exact := slices.Clone(net.Grads)
	fast := ShardGradients(net, ds, idx, &b)
	var scale float64
	for _, v := range net.Grads {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	for i := range exact {
		if d := math.Abs(float64(exact[i] - net.Grads[i])); d > 1e-5*scale {
			t.Fatalf("gradient[%d]: exact %g, float %g", i, exact[i], net.Grads[i])
		}
	}
	if math.Abs(tot.LossSum-fast.LossSum) > 1e-9*math.Abs(fast.LossSum) || tot.Correct != fast.Correct || tot.Count != 100 || local != tot {
		t.Fatalf("totals %+v (shard %+v), float %+v", tot, local, fast)
	}
}

func TestExactFlagsOverflowAndNaN(t *testing.T) {
	ds := randomSet(32, 12, 3, 9)
	idx := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	var b Buffers
	net := exactNet(t, 1, 4)
	ShardGradientsExact(net, ds, idx, 1, &b, 1e-3, nil)
	_, err := FinishExact(net, 1e-3)
	if !errors.Is(err, ErrFixedOverflow) || !errors.Is(err, model.ErrNonFinite) {
		t.Fatalf("a limit of 1e-3: %v, want a fixed-point overflow", err)
	}
	ds.Values[3] = float32(math.NaN())
	ShardGradientsExact(net, ds, idx, 1, &b, 1e9, nil)
	if _, err := FinishExact(net, 1e9); !errors.Is(err, model.ErrNonFinite) || errors.Is(err, ErrFixedOverflow) {
		t.Fatalf("a NaN input: %v, want non-finite", err)
	}
}

// TestExactHooks: the head is written, and every layer reported, before
// the first layer's bucket is released; BucketsExact covers the buffer.
func TestExactHooks(t *testing.T) {
	ds := randomSet(40, 12, 3, 11)
	net := exactNet(t, 1, 8)
	bs := BucketsExact(net, 1<<10)
	if bs[0].End != len(net.IGrads) || bs[len(bs)-1].Start != 0 {
		t.Fatalf("buckets %+v do not cover [0, %d)", bs, len(net.IGrads))
	}
	for i := 1; i < len(bs); i++ {
		if bs[i].End != bs[i-1].Start {
			t.Fatalf("buckets %+v are not contiguous", bs)
		}
	}
	var order []int
	var b Buffers
	ShardGradientsExact(net, ds, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 2, &b, 1e9, func(l int) {
		if l == 0 && net.IGrads[headCount] != 12 {
			t.Errorf("the head is not written when the first layer is done")
		}
		order = append(order, l)
	})
	if !slices.Equal(order, []int{2, 1, 0}) {
		t.Fatalf("layers reported %v, want [2 1 0]", order)
	}
	order = nil
	ShardGradientsExact(net, ds, nil, 1, &b, 1e9, func(l int) { order = append(order, l) })
	if !slices.Equal(order, []int{2, 1, 0}) || net.IGrads[headCount] != 0 {
		t.Fatalf("an empty shard reported %v, head %v", order, net.IGrads[:model.ExactHead])
	}
}
