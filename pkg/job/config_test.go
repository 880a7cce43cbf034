package job

import (
	"strings"
	"testing"

	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/train"
)

// TestDatasetDefaultLoss: the ten-digit mnist defaults to softmax
// cross-entropy, everything else keeps the lecture's bce with a sigmoid;
// flags given explicitly always win.
func TestDatasetDefaultLoss(t *testing.T) {
	tests := []struct {
		dataset, loss, output string
		wantLoss, wantOutput  string
	}{
		{"mnist", "", "", "ce", "softmax"},
		{"mnist-1v2", "", "", "bce", "sigmoid"},
		{"gaussian", "", "", "bce", "sigmoid"},
		{"csv:x.csv", "", "", "bce", "sigmoid"},
		{"gaussian", "ce", "", "ce", "softmax"},
		{"mnist", "mse", "", "mse", "sigmoid"},
		{"mnist", "", "identity", "ce", "identity"},
	}
	for _, tt := range tests {
		c := Defaults()
		c.Dataset, c.Loss, c.Output = tt.dataset, tt.loss, tt.output
		if got := c.LossName(); got != tt.wantLoss {
			t.Errorf("%s --loss %q: loss %s, want %s", tt.dataset, tt.loss, got, tt.wantLoss)
		}
		if got := c.OutputName(); got != tt.wantOutput {
			t.Errorf("%s --loss %q --output %q: output %s, want %s", tt.dataset, tt.loss, tt.output, got, tt.wantOutput)
		}
	}
	c := Defaults()
	c.Dataset = "mnist"
	mc, err := c.ModelConfig(784, 10)
	if err != nil {
		t.Fatal(err)
	}
	if mc.Loss != model.CrossEntropy || mc.Output != model.Softmax || mc.Outputs != 10 {
		t.Errorf("mnist network %s, want 10 softmax outputs with cross-entropy", mc)
	}
}

// TestLRFor: epochs become steps, the cosine period is the run's length
// (cut by --steps), and --accumulate must fit the batch.
func TestLRFor(t *testing.T) {
	tests := []struct {
		name                  string
		schedule              string
		epochs, steps, batch  int
		accumulate, stepEpoch int
		rows                  int
		want                  train.LRSchedule
		wantErr               bool
	}{
		{"step", "step", 10, 0, 64, 1, 3, 1000, train.LRSchedule{Kind: train.LRStep, Base: 0.1, StepSteps: 3 * 16, Gamma: 0.1}, false},
		{"cosine epochs", "cosine", 4, 0, 64, 1, 0, 1000, train.LRSchedule{Kind: train.LRCosine, Base: 0.1, TMax: 4 * 16}, false},
		{"cosine cut by steps", "cosine", 4, 10, 64, 1, 0, 1000, train.LRSchedule{Kind: train.LRCosine, Base: 0.1, TMax: 10}, false},
		{"full batch accumulate", "constant", 1, 0, 0, 1000, 0, 1000, train.LRSchedule{Kind: train.LRConstant, Base: 0.1}, false},
		{"accumulate beyond the rows", "constant", 1, 0, 0, 1001, 0, 1000, train.LRSchedule{}, true},
		{"batch beyond the rows", "constant", 1, 0, 5000, 1001, 0, 1000, train.LRSchedule{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			c.LRSchedule, c.Epochs, c.Steps, c.Batch, c.Accumulate, c.LRStepEpochs = tt.schedule, tt.epochs, tt.steps, tt.batch, tt.accumulate, tt.stepEpoch
			sched, err := c.Schedule()
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.LRFor(tt.rows, sched)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestExactInFingerprint: a checkpoint of an exact run is not resumed by a
// fast one, nor by an exact one with other blocks or bits (each gives
// other bits), while a fast run keeps the fingerprint it always had.
func TestExactInFingerprint(t *testing.T) {
	fp := func(edit func(*Config)) string {
		c := Defaults()
		edit(&c)
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		return c.Fingerprint(model.Config{Inputs: 2, Outputs: 1}, model.OptimizerConfig{Kind: model.SGD, LR: 0.1})
	}
	fast := fp(func(*Config) {})
	exact := fp(func(c *Config) { c.Reduction = "exact" })
	if fast != fp(func(c *Config) { c.ExactBlock = 32 }) || strings.Contains(fast, "exact") {
		t.Fatalf("the fast run's fingerprint changed: %s", fast)
	}
	for _, other := range []string{fast, fp(func(c *Config) { c.Reduction, c.ExactBlock = "exact", 32 }), fp(func(c *Config) { c.Reduction, c.ExactFracBits = "exact", 40 })} {
		if other == exact {
			t.Fatalf("fingerprint %s does not tell the runs apart", exact)
		}
	}
	if e := (&Config{Reduction: "exact", ExactBlock: 16, ExactFracBits: 32}).Exact(); e != (model.Exact{Block: 16, FracBits: 32}) {
		t.Fatalf("Exact() = %+v", e)
	}
}
