package train

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/model"
)

// recorder is an Executor that records the batches it is given.
type recorder struct {
	batches [][]int
	failAt  int
}

func (r *recorder) Step(_ context.Context, step int, batch []int, _ float64) (StepResult, error) {
	if r.failAt > 0 && step == r.failAt {
		return StepResult{}, errors.New("boom")
	}
	r.batches = append(r.batches, slices.Clone(batch))
	return StepResult{LossSum: float64(len(batch)), Correct: len(batch) / 2, Count: len(batch)}, nil
}
func (r *recorder) Evaluate(context.Context, *data.Dataset) (float64, int, error) { return 1, 1, nil }
func (r *recorder) WorldSize() int                                                { return 1 }
func (r *recorder) Params(context.Context) ([]float32, error)                     { return nil, nil }
func (r *recorder) State(context.Context) ([]float32, *model.Optimizer, error) {
	return nil, &model.Optimizer{}, nil
}

func tinySet(rows int) *data.Dataset {
	d := &data.Dataset{Name: "tiny", Features: 1, Classes: 2, Values: make([]float32, rows), Labels: make([]int32, rows)}
	for i := range rows {
		d.Values[i] = float32(i)
		d.Labels[i] = int32(i % 2)
	}
	return d
}

func TestScheduleBatchModes(t *testing.T) {
	tests := []struct {
		name       string
		sched      Schedule
		rows       int
		wantSteps  int
		wantSizes  []int // sizes of the first epoch's batches
		sameEpochs bool  // epoch 2 sees the same batches as epoch 1
	}{
		{"full batch", Schedule{Epochs: 2, Batch: 0, Seed: 1}, 10, 2, []int{10}, false},
		{"batch larger than the set is full batch", Schedule{Epochs: 1, Batch: 50, Seed: 1}, 10, 1, []int{10}, false},
		{"single sample", Schedule{Epochs: 1, Batch: 1, Seed: 1}, 5, 5, []int{1, 1, 1, 1, 1}, false},
		{"mini-batch with a short last batch", Schedule{Epochs: 1, Batch: 4, Seed: 1}, 10, 3, []int{4, 4, 2}, false},
		{"shuffle once reuses the batches", Schedule{Epochs: 2, Batch: 4, Seed: 1, Shuffle: ShuffleOnce}, 10, 6, []int{4, 4, 2}, true},
		{"steps limit", Schedule{Epochs: 5, Batch: 4, Seed: 1, MaxSteps: 4}, 10, 4, []int{4, 4, 2}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{}
			res, err := Run(context.Background(), r, tinySet(tc.rows), nil, tc.sched, Hooks{}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Steps != tc.wantSteps || len(r.batches) != tc.wantSteps {
				t.Fatalf("ran %d steps, want %d", res.Steps, tc.wantSteps)
			}
			per := len(tc.wantSizes)
			seen := map[int]int{}
			for i, b := range r.batches[:min(per, len(r.batches))] {
				if len(b) != tc.wantSizes[i] {
					t.Fatalf("batch %d has %d samples, want %d", i, len(b), tc.wantSizes[i])
				}
				for _, x := range b {
					seen[x]++
				}
			}
			if len(r.batches) >= per && len(seen) != tc.rows {
				t.Fatalf("the first epoch covered %d distinct samples of %d", len(seen), tc.rows)
			}
			if len(r.batches) >= 2*per && tc.sched.Batch > 0 && tc.sched.Batch < tc.rows {
				same := slices.EqualFunc(r.batches[:per], r.batches[per:2*per], slices.Equal[[]int])
				if same != tc.sameEpochs {
					t.Fatalf("epochs 1 and 2 identical = %v, want %v", same, tc.sameEpochs)
				}
			}
		})
	}
}

func TestRunRecordsEpochsAndStopsOnError(t *testing.T) {
	r := &recorder{}
	res, err := Run(context.Background(), r, tinySet(8), tinySet(4), Schedule{Epochs: 3, Batch: 4, Seed: 2}, Hooks{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 3 || res.Records[2].Step != 6 || res.Records[2].Samples != 24 {
		t.Fatalf("records %+v", res.Records)
	}
	if got := res.Records[0].TrainAccuracy; got != 0.5 {
		t.Fatalf("train accuracy %v, want 0.5", got)
	}
	if got := res.Records[0].TestAccuracy; got != 0.25 {
		t.Fatalf("test accuracy %v, want 1/4", got)
	}
	_, err = Run(context.Background(), &recorder{failAt: 3}, tinySet(8), nil, Schedule{Epochs: 3, Batch: 4}, Hooks{}, nil, nil)
	if err == nil || !errors.Is(err, err) || err.Error() != "epoch 2 step 2: boom" {
		t.Fatalf("got %v, want the step's error with its position", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, &recorder{}, tinySet(8), nil, Schedule{Epochs: 1, Batch: 4}, Hooks{}, nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run returned %v", err)
	}
}

func TestLocalExecutorRefusesNonFiniteSteps(t *testing.T) {
	ds := tinySet(4)
	ds.Values[2] = float32(math.Inf(1))
	net, err := model.New(model.Config{Inputs: 1, Outputs: 1, Output: model.Sigmoid, Loss: model.BCE, Bias: true, Init: model.Xavier}, 1)
	if err != nil {
		t.Fatal(err)
	}
	opt, _ := model.NewOptimizer(model.OptimizerConfig{Kind: model.SGD, LR: 0.1}, len(net.Params))
	ex, err := NewLocalExecutor(net, opt, ds)
	if err != nil {
		t.Fatal(err)
	}
	before := slices.Clone(net.Params)
	if _, err := ex.Step(context.Background(), 0, []int{0, 1, 2, 3}, 0); !errors.Is(err, model.ErrNonFinite) {
		t.Fatalf("got %v, want a non-finite error", err)
	}
	if !slices.Equal(before, net.Params) {
		t.Fatal("a refused step changed the parameters")
	}
}
