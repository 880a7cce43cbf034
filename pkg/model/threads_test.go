package model

import (
	"math"
	"os"
	"testing"

	"github.com/ringtrain/ringtrain/pkg/data"
)

// trainSteps trains cfg on ds for steps batches of 64 rows on threads
// threads, the way pkg/train's LocalExecutor drives a step (gather,
// Gradients, finiteness check, Step with scale 1/count), and returns the
// network and optimizer.
func trainSteps(t *testing.T, cfg Config, oc OptimizerConfig, threads, steps int, ds *data.Dataset) (*Network, *Optimizer) {
	t.Helper()
	const batch = 64
	net, err := New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	net.SetThreads(threads)
	opt, err := NewOptimizer(oc, len(net.Params))
	if err != nil {
		t.Fatal(err)
	}
	opt.SetPool(net.Pool())
	idx := make([]int, batch)
	x := make([]float32, batch*ds.Features)
	labels := make([]int32, batch)
	for s := range steps {
		for i := range idx {
			idx[i] = (s*batch + i) % ds.Rows()
		}
		ds.Gather(idx, x, labels)
		loss, _ := net.Gradients(x, labels)
		if err := CheckFinite("gradient", net.Grads); err != nil {
			t.Fatalf("step %d: %v", s, err)
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			t.Fatalf("step %d: loss %v", s, loss)
		}
		opt.Step(net.Params, net.Grads, 1/float32(batch))
	}
	return net, opt
}

// checkThreadsBitIdentical trains cfg for 100 MNIST 1-vs-2 steps with SGD,
// momentum and Adam on 1, 2 and 3 threads and requires every parameter and
// optimizer state bit to match the one-thread run.
func checkThreadsBitIdentical(t *testing.T, cfg Config) {
	const steps = 100
	ds, _, err := data.Load("mnist-1v2", "", data.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	opts := []OptimizerConfig{
		{Kind: SGD, LR: 0.1},
		{Kind: Momentum, LR: 0.05, Momentum: 0.9},
		{Kind: Adam, LR: 0.001},
	}
	for _, oc := range opts {
		t.Run(oc.Kind.String(), func(t *testing.T) {
			want, wantOpt := trainSteps(t, cfg, oc, 1, steps, ds)
			for _, th := range []int{2, 3} {
				got, gotOpt := trainSteps(t, cfg, oc, th, steps, ds)
				if got.Threads() != th {
					t.Fatalf("Threads() = %d, want %d", got.Threads(), th)
				}
				for _, b := range []struct {
					name      string
					got, want []float32
				}{{"params", got.Params, want.Params}, {"optimizer state", gotOpt.State, wantOpt.State}} {
					for i := range b.want {
						if math.Float32bits(b.got[i]) != math.Float32bits(b.want[i]) {
							t.Fatalf("threads=%d: %s[%d] = %g (%#08x), one thread gave %g (%#08x)", th, b.name, i,
								b.got[i], math.Float32bits(b.got[i]), b.want[i], math.Float32bits(b.want[i]))
						}
					}
				}
			}
		})
	}
}

// TestThreadsBitIdentical checks that the thread count never changes a bit
// of training. It uses 784-256-128-1 rather than the 784-1000-1000-1
// mlp-step network: nine 100-step runs of the big network take 12-20 s
// on two busy cores, too slow for `go test ./...`; the small one takes about
// 2 s (RINGTRAIN_FULL_MLP=1 runs the big one too, see below). To make the
// small network exercise every split (its 64 x 128 activations are under the
// production threshold), minPart is lowered so that every elementwise loop
// of more than a few rows is split; its GEMMs are split by the production
// rule (pkg/linalg tests the GEMM split on its own at every size).
func TestThreadsBitIdentical(t *testing.T) {
	saved := minPart
	minPart = 16
	t.Cleanup(func() { minPart = saved })
	checkThreadsBitIdentical(t, Config{Inputs: 784, Hidden: []int{256, 128}, Outputs: 1,
		Activation: ReLU, Output: Sigmoid, Loss: BCE, Bias: true, Init: He})
}

// TestThreadsBitIdenticalMLPStep is TestThreadsBitIdentical on the full
// 784-1000-1000-1 network with the production split thresholds. It takes
// 12-20 s, so it runs only with RINGTRAIN_FULL_MLP=1.
func TestThreadsBitIdenticalMLPStep(t *testing.T) {
	if os.Getenv("RINGTRAIN_FULL_MLP") != "1" {
		t.Skip("set RINGTRAIN_FULL_MLP=1 to run the full-size network (12-20 s)")
	}
	checkThreadsBitIdentical(t, Config{Inputs: 784, Hidden: []int{1000, 1000}, Outputs: 1,
		Activation: ReLU, Output: Sigmoid, Loss: BCE, Bias: true, Init: He})
}
