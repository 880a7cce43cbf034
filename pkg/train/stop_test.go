package train

import (
	"context"
	"math"
	"testing"

	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/report"
)

func TestStopper(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name      string
		sched     Schedule
		train     []float64
		test      []float64
		stopAfter int // epoch after which it stops (0: never)
		why       string
		best      int
	}{
		{"no criteria", Schedule{}, []float64{3, 2, 1}, []float64{3, 2, 4}, 0, "", 2},
		{"until-loss", Schedule{UntilLoss: 1.5}, []float64{3, 2, 1, 0.5}, []float64{3, 2, 1, 1}, 3, StopUntilLoss, 3},
		{"patience 2", Schedule{Patience: 2}, []float64{5, 4, 3, 2, 1}, []float64{3, 2, 2.5, 2.1, 1}, 4, StopPatience, 2},
		{"patience resets on improvement", Schedule{Patience: 2}, []float64{5, 4, 3, 2, 1}, []float64{3, 3.1, 2, 2.2, 2.3}, 5, StopPatience, 3},
		{"min-delta: a small gain is no improvement", Schedule{Patience: 2, MinDelta: 0.5}, []float64{5, 4, 3, 2}, []float64{3, 2.8, 2.6, 1}, 3, StopPatience, 1},
		{"no test set: patience never fires, no best", Schedule{Patience: 1}, []float64{3, 2}, []float64{nan, nan}, 0, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStopper(tc.sched)
			stopped, why := 0, ""
			for i := range tc.train {
				if w := s.observe(report.EpochRecord{Epoch: i + 1, TrainLoss: tc.train[i], TestLoss: tc.test[i]}); w != "" {
					stopped, why = i+1, w
					break
				}
			}
			if stopped != tc.stopAfter || why != tc.why || s.bestEpoch != tc.best {
				t.Fatalf("stopped after epoch %d (%q), best %d; want %d (%q), best %d", stopped, why, s.bestEpoch, tc.stopAfter, tc.why, tc.best)
			}
		})
	}
}

// TestRunStopsWhenConverged: the lecture's loop "until convergence" on the
// Gaussian set, and a resumed run that had converged stays stopped.
func TestRunStopsWhenConverged(t *testing.T) {
	tr, te, err := data.Load("gaussian", "", data.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	run := func(sched Schedule, pos Position) *Result {
		t.Helper()
		net, _ := model.New(model.Config{Inputs: 2, Hidden: []int{2}, Outputs: 1, Activation: model.Tanh, Output: model.Sigmoid, Loss: model.MSE, Bias: true, Init: model.Xavier}, 1)
		opt, _ := model.NewOptimizer(model.OptimizerConfig{Kind: model.SGD, LR: 0.5}, len(net.Params))
		ex, _ := NewLocalExecutor(net, opt, tr)
		res, err := Resume(context.Background(), ex, tr, te, sched, pos, Hooks{}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	base := Schedule{Epochs: 200, Batch: 16, Seed: 1}
	full := run(base, Position{Epoch: 1})
	if full.StopReason != StopEpochs || len(full.Records) != 200 {
		t.Fatalf("no criterion: %s after %d epochs", full.StopReason, len(full.Records))
	}
	target := full.Records[len(full.Records)-1].TrainLoss * 1.5
	until := base
	until.UntilLoss = target
	res := run(until, Position{Epoch: 1})
	last := res.Records[len(res.Records)-1]
	if res.StopReason != StopUntilLoss || last.TrainLoss >= target || len(res.Records) >= 200 {
		t.Fatalf("until-loss %g: %s after %d epochs, last train loss %g", target, res.StopReason, len(res.Records), last.TrainLoss)
	}
	for _, r := range res.Records[:len(res.Records)-1] {
		if r.TrainLoss < target {
			t.Fatalf("epoch %d already had train loss %g < %g", r.Epoch, r.TrainLoss, target)
		}
	}
	pat := base
	pat.Patience, pat.MinDelta = 5, 1e-4
	res = run(pat, Position{Epoch: 1})
	if res.StopReason != StopPatience || res.BestEpoch == 0 || len(res.Records)-res.BestEpoch != 5 {
		t.Fatalf("patience: %s after %d epochs, best %d", res.StopReason, len(res.Records), res.BestEpoch)
	}
	// Resumed at the end of the converged run: nothing more is trained.
	again := run(pat, Position{Epoch: len(res.Records) + 1, Steps: res.Steps, Samples: res.Samples, Records: res.Records})
	if again.StopReason != StopPatience || again.Steps != res.Steps {
		t.Fatalf("resumed: %s, %d steps (had %d)", again.StopReason, again.Steps, res.Steps)
	}
	// Early stopping without a test set is refused.
	net, _ := model.New(model.Config{Inputs: 2, Outputs: 1, Activation: model.Tanh, Output: model.Sigmoid, Loss: model.MSE, Init: model.Xavier}, 1)
	opt, _ := model.NewOptimizer(model.OptimizerConfig{Kind: model.SGD, LR: 0.5}, len(net.Params))
	ex, _ := NewLocalExecutor(net, opt, tr)
	if _, err := Run(context.Background(), ex, tr, nil, pat, Hooks{}, nil, nil); err == nil {
		t.Fatal("patience without a test set was accepted")
	}
}
