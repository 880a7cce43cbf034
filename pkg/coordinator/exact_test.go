package coordinator

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"testing"

	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/train"
)

// paramHash is the SHA-256 of the parameters' bytes, the tensors of
// model.safetensors.
func paramHash(p []float32) string {
	b := make([]byte, 4*len(p))
	for i, v := range p {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// exactSetup is MNIST 1 vs 2 under exact reduction, batch 96 in blocks of
// 16 (six blocks: five workers get one or two), on a network narrow
// enough that hundreds of steps take seconds.
func exactSetup(t *testing.T, opt model.OptimizerConfig, steps int) setup {
	t.Helper()
	tr, _, err := data.Load("mnist-1v2", "", data.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	hidden := []int{128, 64}
	if raceEnabled {
		hidden = []int{16, 8}
		steps = min(steps, 60)
	}
	return setup{
		cfg:   model.Config{Inputs: 784, Hidden: hidden, Outputs: 1, Activation: model.ReLU, Output: model.Sigmoid, Loss: model.BCE, Bias: true, Init: model.He},
		opt:   opt,
		sched: train.Schedule{Epochs: 1, Batch: 96, Seed: 9, MaxSteps: steps},
		train: tr,
		exact: model.Exact{Block: 16, FracBits: model.DefaultExactFracBits},
	}
}

// TestExactBitIdenticalAnyWorldSize: under exact reduction the parameters
// after 600 steps are the same bits (SHA-256) for the single-process
// trainer and 1, 2, 3 and 5 in-process workers, for SGD, momentum and
// Adam; with 3 workers also over real sockets and gossip, and with
// micro-batches. No tolerance: any difference fails.
func TestExactBitIdenticalAnyWorldSize(t *testing.T) {
	opts := []struct {
		name string
		opt  model.OptimizerConfig
	}{
		{"sgd", model.OptimizerConfig{Kind: model.SGD, LR: 0.1}},
		{"momentum", model.OptimizerConfig{Kind: model.Momentum, LR: 0.05, Momentum: 0.9}},
		{"adam", model.OptimizerConfig{Kind: model.Adam, LR: 1e-3}.WithDefaults()},
	}
	for _, o := range opts {
		s := exactSetup(t, o.opt, 600)
		want := paramHash(s.reference(t))
		fast := s
		fast.exact = model.Exact{}
		// The same comparison under the fast reduction, for contrast: its
		// float32 sums depend on the split, so 2 workers end elsewhere.
		fastRef := fast.reference(t)
		fast2, _ := fast.distributed(t, 2, false)
		t.Logf("%s: single-process exact %s; fast: single-process %s, 2 workers %s (%.3g of the scale apart)",
			o.name, want, paramHash(fastRef), paramHash(fast2), maxRelDiff(fastRef, fast2))
		for _, tc := range []struct {
			n          int
			real       bool
			accumulate int
		}{{1, false, 0}, {2, false, 0}, {3, false, 0}, {5, false, 0}, {3, true, 0}, {2, false, 3}} {
			if tc.accumulate > 0 && o.name != "adam" {
				continue
			}
			t.Run(fmt.Sprintf("%s/workers=%d/real=%v/accumulate=%d", o.name, tc.n, tc.real, tc.accumulate), func(t *testing.T) {
				s := s
				s.accumulate = tc.accumulate
				got, _ := s.distributed(t, tc.n, tc.real)
				if h := paramHash(got); h != want {
					t.Fatalf("parameters %s, the single-process trainer's %s (%.3g of their scale apart)", h, want, maxRelDiff(s.reference(t), got))
				}
			})
		}
	}
}

// TestExactFailuresDoNotChangeABit: crashes, graceful stops and joins
// change the ring's size and order three times and abort attempts; under
// exact reduction the run still ends on the undisturbed single-process
// run's bits.
func TestExactFailuresDoNotChangeABit(t *testing.T) {
	s := exactSetup(t, model.OptimizerConfig{Kind: model.Adam, LR: 1e-3}.WithDefaults(), 40)
	want := paramHash(s.reference(t))
	got, worlds, st := runWith(t, s, 3, []event{{5, kill(1)}, {10, add}, {15, stop(2)}, {22, add}, {30, kill(0)}})
	t.Logf("world size by step %v; aborted attempts %d", worlds, st.Aborts)
	if st.Aborts == 0 {
		t.Fatal("no step was aborted: the crashes were not noticed")
	}
	if h := paramHash(got); h != want {
		t.Fatalf("parameters %s, the undisturbed single-process run's %s", h, want)
	}
}
