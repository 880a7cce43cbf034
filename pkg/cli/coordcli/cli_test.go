package coordcli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/report"
	"github.com/ringtrain/ringtrain/pkg/safetensors"
)

func TestCoordinatorRejectsInvalidFlagsNamingThem(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--lr", "-1"}, "--lr: must be a positive number"},
		{[]string{"--lr", "abc"}, `invalid value "abc" for flag -lr`},
		{[]string{"--batch", "-3"}, "--batch: must be 0"},
		{[]string{"--epochs", "0"}, "--epochs: must be at least 1"},
		{[]string{"--steps", "-1"}, "--steps"},
		{[]string{"--hidden", "10,x"}, `invalid value "10,x" for flag -hidden`},
		{[]string{"--hidden", "10,0"}, `width 0 must be positive`},
		{[]string{"--activation", "swish"}, `--activation: unknown activation "swish"`},
		{[]string{"--output", "tanh"}, "--loss bce with --output tanh"},
		{[]string{"--loss", "l1"}, `--loss: unknown loss "l1"`},
		{[]string{"--init", "zeros"}, "--init: unknown init"},
		{[]string{"--optimizer", "rmsprop"}, "--optimizer: unknown optimizer"},
		{[]string{"--momentum", "1"}, "--momentum: must be in [0, 1)"},
		{[]string{"--shuffle", "never"}, "--shuffle: unknown shuffle mode"},
		{[]string{"--dataset", "cifar"}, `--dataset: unknown data set "cifar"`},
		{[]string{"--test", "gaussian"}, "--test: must be csv:PATH"},
		{[]string{"--min-workers", "0"}, "--min-workers: must be at least 1"},
		{[]string{"--max-workers", "1", "--min-workers", "2"}, "--max-workers"},
		{[]string{"--grpc-addr", "nonsense"}, "--grpc-addr"},
		{[]string{"--frame-bytes", "7"}, "--frame-bytes"},
		{[]string{"--bucket-mb", "-1"}, "--bucket-mb: must be between 0"},
		{[]string{"--bucket-mb", "NaN"}, "--bucket-mb"},
		{[]string{"--wire", "fp8"}, `--wire: unknown wire encoding "fp8"`},
		{[]string{"--log-format", "xml"}, "--log-format"},
		{[]string{"stray"}, `unexpected argument "stray"`},
		{[]string{"--lr-schedule", "exp"}, `--lr-schedule: unknown learning-rate schedule "exp"`},
		{[]string{"--lr-schedule", "step"}, "--lr-step-epochs: must be at least 1 with --lr-schedule step"},
		{[]string{"--lr-schedule", "step", "--lr-step-epochs", "2", "--lr-gamma", "0"}, "--lr-gamma: must be a positive number"},
		{[]string{"--warmup-steps", "-1"}, "--warmup-steps: must be 0"},
		{[]string{"--accumulate", "0"}, "--accumulate: must be at least 1"},
		{[]string{"--accumulate", "65"}, "--accumulate: 65 micro-batches cannot be cut from a batch of 64 (--batch)"},
		{[]string{"--reduction", "approx"}, `--reduction: must be fast or exact, got "approx"`},
		{[]string{"--exact-block", "0"}, "--exact-block: must be at least 1 sample"},
		{[]string{"--exact-frac-bits", "63"}, "--exact-frac-bits: must be 0..62"},
		{[]string{"--reduction", "exact", "--wire", "bf16"}, "--wire: bf16 rounds gradients on the wire"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			code := Coordinator(context.Background(), append(tc.args, "--out", t.TempDir()), &stderr)
			if code != 2 {
				t.Fatalf("exit code %d, want 2; stderr:\n%s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr does not name the problem %q:\n%s", tc.want, stderr.String())
			}
		})
	}
}

// TestAccumulateBeyondTheData: --accumulate larger than the batch the data
// allows (here the full batch of 160 Gaussian training rows) is refused
// before training with a message naming both; like other checks against
// the data it exits 1.
func TestAccumulateBeyondTheData(t *testing.T) {
	var stderr bytes.Buffer
	code := Coordinator(context.Background(), []string{"--single-process", "--dataset", "gaussian", "--batch", "0",
		"--accumulate", "161", "--out", t.TempDir()}, &stderr)
	if want := "--accumulate: 161 micro-batches cannot be cut from a batch of 160 rows"; code != 1 || !strings.Contains(stderr.String(), want) {
		t.Fatalf("exit code %d, want 1 naming %q; stderr:\n%s", code, want, stderr.String())
	}
}

func TestSingleProcessTrainingWritesOutputs(t *testing.T) {
	out := filepath.Join(t.TempDir(), "new", "dir")
	var stderr bytes.Buffer
	args := []string{"--single-process", "--dataset", "gaussian", "--hidden", "2", "--activation", "tanh", "--output", "sigmoid",
		"--loss", "mse", "--init", "xavier", "--lr", "0.5", "--batch", "16", "--epochs", "40", "--out", out}
	if code := Coordinator(context.Background(), args, &stderr); code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	s, err := report.ReadSummary(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Epochs != 40 || s.Steps != 400 || s.Samples != 6400 || s.WorldSize != 1 {
		t.Fatalf("summary %+v", s)
	}
	if s.TestAccuracy < 0.85 {
		t.Fatalf("test accuracy %.3f after 40 epochs; the 2-2-1 network should beat 0.85", s.TestAccuracy)
	}
	recs, err := report.ReadMetricsCSV(filepath.Join(out, "metrics.csv"))
	if err != nil || len(recs) != 40 {
		t.Fatalf("metrics: %d rows, %v", len(recs), err)
	}
	if !(recs[39].TrainLoss < recs[0].TrainLoss) {
		t.Fatalf("train loss went from %v to %v", recs[0].TrainLoss, recs[39].TrainLoss)
	}
	for _, f := range []string{"learning_curve.png", "learning_curve.svg", "model.safetensors"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if c := strings.Count(stderr.String(), "epoch done"); c != 40 {
		t.Fatalf("%d epoch lines on stderr, want 40", c)
	}

	// The model file starts a new run, and one of another shape is refused.
	out2 := t.TempDir()
	stderr.Reset()
	args2 := []string{"--single-process", "--dataset", "gaussian", "--hidden", "2", "--activation", "tanh", "--output", "sigmoid",
		"--loss", "mse", "--steps", "1", "--init-from", filepath.Join(out, "model.safetensors"), "--out", out2}
	if code := Coordinator(context.Background(), args2, &stderr); code != 0 {
		t.Fatalf("init-from: exit %d:\n%s", code, stderr.String())
	}
	stderr.Reset()
	args3 := []string{"--single-process", "--dataset", "gaussian", "--hidden", "3", "--activation", "tanh", "--output", "sigmoid",
		"--loss", "mse", "--init-from", filepath.Join(out, "model.safetensors"), "--out", out2}
	if code := Coordinator(context.Background(), args3, &stderr); code != 1 || !strings.Contains(stderr.String(), "layers.0.weight has shape [2 2], the network needs [3 2]") {
		t.Fatalf("mismatched init-from: exit %d:\n%s", code, stderr.String())
	}
}

func TestUnwritableOutFailsBeforeTraining(t *testing.T) {
	// A path below a regular file cannot be created, even by root.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	code := Coordinator(context.Background(), []string{"--single-process", "--dataset", "gaussian", "--out", filepath.Join(file, "sub")}, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "--out") || strings.Contains(stderr.String(), "epoch done") {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
}

// TestResumeFromCheckpointIsExact: a run stopped in the middle of an epoch
// and resumed from its checkpoint ends bit for bit where an uninterrupted run
// ends, with the same metrics; a completed run in the same --out starts anew;
// another configuration is refused naming the difference.
func TestResumeFromCheckpointIsExact(t *testing.T) {
	base := []string{"--single-process", "--dataset", "gaussian", "--hidden", "4", "--activation", "tanh", "--loss", "bce",
		"--init", "xavier", "--optimizer", "adam", "--lr", "0.05", "--batch", "16", "--epochs", "3", "--checkpoint-every", "4"}
	run := func(out string, extra ...string) string {
		t.Helper()
		var stderr bytes.Buffer
		if code := Coordinator(context.Background(), append(append(base, "--out", out), extra...), &stderr); code != 0 {
			t.Fatalf("exit %d:\n%s", code, stderr.String())
		}
		return stderr.String()
	}
	full := t.TempDir()
	run(full)
	resumed := t.TempDir()
	run(resumed, "--steps", "14") // stops in epoch 2 (10 steps an epoch) after the checkpoint at step 12
	if _, err := os.Stat(filepath.Join(resumed, "checkpoints", "ckpt-000000012.safetensors")); err != nil {
		t.Fatalf("no checkpoint at step 12: %v", err)
	}
	logs := run(resumed)
	if !strings.Contains(logs, "resuming from checkpoint") || !strings.Contains(logs, "steps=14") {
		t.Fatalf("the second run did not resume from step 14:\n%s", logs)
	}
	a, _ := os.ReadFile(filepath.Join(full, "model.safetensors"))
	b, _ := os.ReadFile(filepath.Join(resumed, "model.safetensors"))
	if !bytes.Equal(a, b) {
		t.Fatal("the resumed run's model differs from the uninterrupted run's")
	}
	ra, _ := report.ReadMetricsCSV(filepath.Join(full, "metrics.csv"))
	rb, _ := report.ReadMetricsCSV(filepath.Join(resumed, "metrics.csv"))
	if len(ra) != 3 || len(rb) != 3 {
		t.Fatalf("metrics rows: %d and %d, want 3", len(ra), len(rb))
	}
	for i := range ra {
		if ra[i].TrainLoss != rb[i].TrainLoss || ra[i].TestAccuracy != rb[i].TestAccuracy || ra[i].Samples != rb[i].Samples {
			t.Fatalf("epoch %d: %+v vs %+v", i+1, ra[i], rb[i])
		}
	}
	// The run is complete: the same command trains anew.
	logs = run(resumed)
	if !strings.Contains(logs, "starting a new run") || strings.Contains(logs, "resuming from checkpoint") {
		t.Fatalf("a completed run was resumed:\n%s", logs)
	}
	// An interrupted run with another configuration is refused.
	run(resumed, "--steps", "5")
	var stderr bytes.Buffer
	code := Coordinator(context.Background(), append(append(base, "--out", resumed), "--lr", "0.01"), &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "lr=0.05 vs lr=0.01") {
		t.Fatalf("resume with another --lr: exit %d:\n%s", code, stderr.String())
	}
}

// TestNonFiniteSteps: a learning rate that overflows the parameters makes
// the next batch's loss infinite. With --on-nonfinite=fail the run stops
// naming the step (and, distributed, the worker); with skip the batches are
// dropped and the parameters saved are finite.
func TestNonFiniteSteps(t *testing.T) {
	base := []string{"--dataset", "gaussian", "--hidden", "3", "--activation", "tanh", "--output", "identity", "--loss", "mse",
		"--lr", "1e36", "--batch", "16", "--epochs", "1", "--grpc-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0", "--gossip-fast"}
	tests := []struct {
		name   string
		extra  []string
		code   int
		expect string
	}{
		{"single-process fail", []string{"--single-process"}, 1, "epoch 1 step 2"},
		{"distributed fail", []string{"--local-workers", "2"}, 1, "worker local-"},
		{"single-process skip", []string{"--single-process", "--on-nonfinite", "skip"}, 0, "batch skipped"},
		{"distributed skip", []string{"--local-workers", "2", "--on-nonfinite", "skip"}, 0, "batch skipped"},
		// Exact reduction flags the same steps through its head.
		{"exact single-process fail", []string{"--single-process", "--reduction", "exact"}, 1, "epoch 1 step 2"},
		{"exact distributed skip", []string{"--local-workers", "2", "--reduction", "exact", "--on-nonfinite", "skip"}, 0, "batch skipped"},
		// A fixed-point range forced far too small: the first step's block
		// sums overflow it, and the message says what to change.
		{"exact overflow", []string{"--single-process", "--reduction", "exact", "--exact-frac-bits", "60", "--lr", "0.1"}, 1,
			"outside the fixed-point range of 60 fractional bits: use fewer with --exact-frac-bits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			var stderr bytes.Buffer
			code := Coordinator(context.Background(), append(append(base, "--out", out), tc.extra...), &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.expect) {
				t.Fatalf("exit %d (want %d), stderr lacks %q:\n%s", code, tc.code, tc.expect, stderr.String())
			}
			if !strings.Contains(stderr.String(), "non-finite") {
				t.Fatalf("the log does not say non-finite:\n%s", stderr.String())
			}
			if tc.code == 0 {
				f, err := safetensors.ReadFile(filepath.Join(out, "model.safetensors"))
				if err != nil {
					t.Fatal(err)
				}
				for _, ts := range f.Tensors {
					if err := model.CheckFinite(ts.Name, ts.Data); err != nil {
						t.Fatalf("saved parameters are corrupted: %v", err)
					}
				}
			}
		})
	}
}
