package model

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkMLPStep is the "mlp-step" configuration of the peer comparison:
// 784-1000-1000-1, ReLU hidden, sigmoid output, BCE, plain SGD lr 0.1,
// batch 64, float32, one thread, random inputs. After one warm-up epoch it
// times b.N epochs of 12,800 samples and reports samples/s.
func BenchmarkMLPStep(b *testing.B) { benchMLPStep(b, 1) }

// BenchmarkMLPStepThreads is BenchmarkMLPStep on 1 and 2 threads
// (Network.SetThreads; the parameters are the same bits either way).
func BenchmarkMLPStepThreads(b *testing.B) {
	for _, th := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", th), func(b *testing.B) { benchMLPStep(b, th) })
	}
}

func benchMLPStep(b *testing.B, threads int) {
	const (
		batch   = 64
		samples = 12800
	)
	cfg := Config{Inputs: 784, Hidden: []int{1000, 1000}, Outputs: 1, Activation: ReLU, Output: Sigmoid, Loss: BCE, Bias: true, Init: He}
	n, err := New(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	n.SetThreads(threads)
	opt, err := NewOptimizer(OptimizerConfig{Kind: SGD, LR: 0.1}, len(n.Params))
	if err != nil {
		b.Fatal(err)
	}
	opt.SetPool(n.Pool())
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, samples*784)
	for i := range x {
		x[i] = rng.Float32()
	}
	y := make([]int32, samples)
	for i := range y {
		y[i] = int32(rng.IntN(2))
	}
	epoch := func() {
		for s := 0; s < samples; s += batch {
			n.Gradients(x[s*784:(s+batch)*784], y[s:s+batch])
			opt.Step(n.Params, n.Grads, 1.0/batch)
		}
	}
	epoch() // warm-up
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		epoch()
	}
	b.ReportMetric(float64(samples*b.N)/time.Since(start).Seconds(), "samples/s")
	b.ReportMetric(0, "ns/op")
	b.Logf("kernel %s, %d threads", n.Kernel(), n.Threads())
}
