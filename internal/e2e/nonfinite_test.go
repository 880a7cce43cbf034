package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/internal/testdata"
	"github.com/ringtrain/ringtrain/pkg/report"
)

// The log messages the test counts: train.Run's for a skipped batch, the
// coordinator's for an aborted attempt at a step.
const (
	msgSkipped = "batch skipped: non-finite loss or gradient; no update applied"
	msgAborted = "step aborted"
)

// skippedAt returns "epoch/step" (step within the epoch) of every skipped
// batch the process logged, in order.
func (p *proc) skippedAt() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var at []string
	for _, l := range p.logs {
		if l["msg"] == msgSkipped {
			at = append(at, fmt.Sprintf("%v/%v", l["epoch"], l["step"]))
		}
	}
	return at
}

// TestNonFiniteSkipSeparateProcesses is the regression test of the
// non-finite skip bug as an operator meets it: --on-nonfinite skip on a CSV
// some of whose batches overflow, with a coordinator and 2 or 3 worker
// processes, and with --local-workers 2 or 3 (the report). Before the fix a
// skipped step reused the step number and ring generation while the worker
// whose shard overflowed left before the all-reduce, so the next attempt
// accepted frames of the skipped one: "step aborted ... frame rejected",
// "replicas diverged", or parameters 1e-2 off. Every run must exit 0, log
// no aborted step, skip the same batches as the single-process trainer, and
// end with the same steps, samples and (within 1e-6 of the parameters'
// scale, the tolerance of the in-process equivalence test) parameters.
func TestNonFiniteSkipSeparateProcesses(t *testing.T) {
	run := []string{"--dataset", "csv:" + testdata.WriteNonFiniteCSV(t), "--on-nonfinite", "skip", "--batch", "32", "--epochs", "3",
		"--hidden", "8", "--activation", "relu", "--output", "sigmoid", "--loss", "bce"}
	refOut := t.TempDir()
	ref := start(t, "coordinator", append([]string{"--single-process", "--log-format", "json", "--out", refOut}, run...)...)
	if code := ref.wait(t, time.Minute); code != 0 {
		t.Fatalf("single-process run exited %d", code)
	}
	want, err := report.ReadSummary(filepath.Join(refOut, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	wantSkipped := ref.skippedAt()
	t.Logf("single-process: %d steps, %d samples, skipped %v", want.Steps, want.Samples, wantSkipped)
	if len(wantSkipped) == 0 || want.Steps == 0 {
		t.Fatalf("the single-process run skipped %d batches and ran %d steps: the data must make some, not all, batches non-finite", len(wantSkipped), want.Steps)
	}

	check := func(t *testing.T, c *proc, out string, n int) {
		if code := c.wait(t, time.Minute); code != 0 {
			t.Fatalf("coordinator exited %d", code)
		}
		if a := c.count(msgAborted); a != 0 {
			t.Errorf("%d %q log lines; a skipped batch must not abort the next step", a, msgAborted)
		}
		if got := c.skippedAt(); !slices.Equal(got, wantSkipped) {
			t.Errorf("skipped %d batches %v, the single-process trainer %d %v", len(got), got, len(wantSkipped), wantSkipped)
		}
		s, err := report.ReadSummary(filepath.Join(out, "summary.json"))
		if err != nil {
			t.Fatal(err)
		}
		if s.Steps != want.Steps || s.Samples != want.Samples || s.WorldSize != n {
			t.Errorf("summary: %d steps, %d samples, world size %d; want %d, %d, %d", s.Steps, s.Samples, s.WorldSize, want.Steps, want.Samples, n)
		}
		d := modelDiff(t, filepath.Join(refOut, "model.safetensors"), filepath.Join(out, "model.safetensors"))
		if d > 1e-6 {
			t.Errorf("the model differs from the single-process trainer's by %.3g of the parameters' scale", d)
		} else {
			t.Logf("max |difference| / max |param| = %.3g", d)
		}
	}
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("workers=%d", n), func(t *testing.T) {
			out := t.TempDir()
			c, gossip := startCoordinator(t, append([]string{"--min-workers", strconv.Itoa(n), "--out", out}, run...)...)
			for range n {
				startWorker(t, gossip)
			}
			check(t, c, out, n)
		})
		t.Run(fmt.Sprintf("local-workers=%d", n), func(t *testing.T) {
			out := t.TempDir()
			c := start(t, "coordinator", append([]string{"--local-workers", strconv.Itoa(n), "--grpc-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0",
				"--gossip-fast", "--log-format", "json", "--out", out}, run...)...)
			check(t, c, out, n)
		})
	}
}
