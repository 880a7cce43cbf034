package e2e

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWorkerWithAnotherModelIsRefused: a worker started for another model
// configuration is refused at join with a message naming the difference, and
// exits 1; the run is not disturbed.
func TestWorkerWithAnotherModelIsRefused(t *testing.T) {
	c, gossip := startCoordinator(t, "--min-workers", "1", "--steps", "2000", "--out", t.TempDir())
	w := startWorker(t, gossip, "--expect-model", "layers=784-500-1 activation=relu output=sigmoid loss=bce bias=true init=he")
	if code := w.wait(t, time.Minute); code != 1 {
		t.Fatalf("refused worker exited %d, want 1", code)
	}
	msg := "layers=784-1000-1000-1 vs layers=784-500-1"
	if !strings.Contains(w.output(), msg) {
		t.Fatalf("worker log does not name the difference %q", msg)
	}
	c.waitLog(t, 10*time.Second, "refused worker", func(l map[string]any) bool {
		return strings.Contains(l["reason"].(string), msg)
	})
	c.signal(t, os.Interrupt)
	c.wait(t, time.Minute)
}

// TestSigtermShutdown: a worker that gets SIGTERM leaves the gossip cluster
// gracefully (the coordinator sees a leave, not a failure, at once) and
// exits 0, and a coordinator that gets SIGTERM writes its outputs before it
// exits 143.
func TestSigtermShutdown(t *testing.T) {
	out := t.TempDir()
	c, gossip := startCoordinator(t, "--min-workers", "2", "--epochs", "50", "--dataset", "gaussian", "--hidden", "4", "--out", out)
	w1 := startWorker(t, gossip)
	startWorker(t, gossip)
	c.waitLog(t, time.Minute, "ring formed", func(l map[string]any) bool { return l["workers"] == float64(2) })
	c.waitLog(t, time.Minute, "epoch done", nil)

	w1.signal(t, syscall.SIGTERM)
	if code := w1.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("worker exited %d after SIGTERM, want 0", code)
	}
	left := c.waitLog(t, 10*time.Second, "worker left the cluster", nil)
	if left["failed"] != false {
		t.Fatalf("a SIGTERM'd worker was seen as failed: %v", left)
	}

	c.signal(t, syscall.SIGTERM)
	if code := c.wait(t, time.Minute); code != 143 {
		t.Fatalf("coordinator exited %d after SIGTERM, want 143 (interrupted, resumable)", code)
	}
	for _, f := range []string{"summary.json", "metrics.csv", "model.safetensors"} {
		if _, err := os.Stat(out + "/" + f); err != nil {
			t.Fatalf("after SIGTERM: %v", err)
		}
	}
}
