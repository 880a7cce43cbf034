package e2e

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/pkg/report"
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
	d := modelDiff(t, filepath.Join(refOut, "model.safetensors"), filepath.Join(out, "model.safetensors"))
	t.Logf("max |difference| / max |param| = %.3g", d)
	if d > 1e-6 {
		t.Fatalf("3 worker processes differ from the single-process trainer by %.3g of the parameters' scale", d)
	}
}
