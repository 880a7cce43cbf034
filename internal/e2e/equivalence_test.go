package e2e

import (
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/pkg/report"
	"github.com/ringtrain/ringtrain/pkg/safetensors"
)

// TestSeparateProcessesMatchSingleProcess trains 12 MNIST 1-vs-2 steps with
// a coordinator and 3 worker processes and compares the model with the
// single-process trainer's. The tolerance is the one of the in-process
// equivalence test (pkg/coordinator), where it is justified: 1e-6 of the
// parameters' scale for SGD.
func TestSeparateProcessesMatchSingleProcess(t *testing.T) {
	run := []string{"--steps", "12", "--seed", "3"}
	refOut := t.TempDir()
	ref := start(t, "coordinator", append([]string{"--single-process", "--log-format", "json", "--out", refOut}, run...)...)
	if code := ref.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("single-process run exited %d", code)
	}

	out := t.TempDir()
	c, gossip := startCoordinator(t, append([]string{"--min-workers", "3", "--check-every", "4", "--out", out}, run...)...)
	for range 3 {
		startWorker(t, gossip)
	}
	if code := c.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("coordinator exited %d", code)
	}
	s, err := report.ReadSummary(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if s.WorldSize != 3 || s.Steps != 12 || s.Samples != 12*64 {
		t.Fatalf("summary: world size %d, steps %d, samples %d; want 3, 12, 768", s.WorldSize, s.Steps, s.Samples)
	}
	a, err := safetensors.ReadFile(filepath.Join(refOut, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := safetensors.ReadFile(filepath.Join(out, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var diff, scale float64
	for _, ta := range a.Tensors {
		tb, ok := b.Lookup(ta.Name)
		if !ok || len(tb.Data) != len(ta.Data) {
			t.Fatalf("tensor %s missing or resized in the distributed model", ta.Name)
		}
		for i := range ta.Data {
			diff = math.Max(diff, math.Abs(float64(ta.Data[i]-tb.Data[i])))
			scale = math.Max(scale, math.Abs(float64(ta.Data[i])))
		}
	}
	t.Logf("max |difference| / max |param| = %.3g", diff/scale)
	if diff/scale > 1e-6 {
		t.Fatalf("3 worker processes differ from the single-process trainer by %.3g of the parameters' scale", diff/scale)
	}
}
