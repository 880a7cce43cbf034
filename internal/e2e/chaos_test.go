package e2e

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/pkg/report"
	"github.com/ringtrain/ringtrain/pkg/safetensors"
)

// chaosRun is the training run of the chaos tests: MNIST 1 vs 2 on a narrow
// network, so that a few hundred steps take seconds.
var chaosRun = []string{"--hidden", "64", "--epochs", "2", "--steps", "300", "--seed", "5", "--check-every", "10"}

// modelDiff returns max |a-b| / max |a| over the tensors of two model files.
func modelDiff(t *testing.T, a, b string) float64 {
	t.Helper()
	fa, err := safetensors.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := safetensors.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	var diff, scale float64
	for _, ta := range fa.Tensors {
		tb, ok := fb.Lookup(ta.Name)
		if !ok || len(tb.Data) != len(ta.Data) {
			t.Fatalf("tensor %s differs in shape", ta.Name)
		}
		for i := range ta.Data {
			diff = math.Max(diff, math.Abs(float64(ta.Data[i]-tb.Data[i])))
			scale = math.Max(scale, math.Abs(float64(ta.Data[i])))
		}
	}
	return diff / scale
}

func referenceModel(t *testing.T, args ...string) string {
	t.Helper()
	out := t.TempDir()
	p := start(t, "coordinator", append(append([]string{"--single-process", "--log-format", "json", "--out", out}, chaosRun...), args...)...)
	if code := p.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("reference run exited %d", code)
	}
	return filepath.Join(out, "model.safetensors")
}

// chaosSamples is what the 300 steps of chaosRun train: the 12,700 samples
// of epoch 1 (199 steps, the last one short) and 101 full batches of 64.
const chaosSamples = 12700 + 101*64

func checkSummary(t *testing.T, out string, steps int) {
	t.Helper()
	s, err := report.ReadSummary(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Steps != steps || s.Samples != chaosSamples {
		t.Fatalf("summary: %d steps, %d samples; want %d and %d (no sample lost or counted twice)", s.Steps, s.Samples, steps, chaosSamples)
	}
}

// TestChaosWorkerKillsAndRestarts kills a random worker with SIGKILL every
// few hundred milliseconds and starts it again, over a 300-step run, and
// checks the result against the undisturbed run and the recovery times.
func TestChaosWorkerKillsAndRestarts(t *testing.T) {
	ref := referenceModel(t)
	out := t.TempDir()
	c, gossip := startCoordinator(t, append([]string{"--min-workers", "1", "--out", out}, chaosRun...)...)
	workers := make([]*proc, 3)
	for i := range workers {
		workers[i] = startWorker(t, gossip, "--id", "w"+strconv.Itoa(i))
	}
	c.waitLog(t, time.Minute, "ring formed", func(l map[string]any) bool { return l["workers"] == float64(3) })
	rng := rand.New(rand.NewPCG(1, 2))
	kills := 0
	for kills < 6 {
		select {
		case <-c.done:
		case <-time.After(time.Duration(150+rng.IntN(300)) * time.Millisecond):
		}
		if isDone(c) {
			break
		}
		i := rng.IntN(len(workers))
		workers[i].signal(t, syscall.SIGKILL)
		workers[i].wait(t, 10*time.Second)
		kills++
		workers[i] = startWorker(t, gossip, "--id", "w"+strconv.Itoa(i))
	}
	if code := c.wait(t, 3*time.Minute); code != 0 {
		t.Fatalf("coordinator exited %d", code)
	}
	checkSummary(t, out, 300)
	d := modelDiff(t, ref, filepath.Join(out, "model.safetensors"))
	aborts := c.count("step aborted")
	t.Logf("%d kills, %d aborted attempts, %d recoveries (worst %.3f s); max |difference| / max |param| = %.3g",
		kills, aborts, c.count("step recovered"), c.maxField("step recovered", "recovery_seconds"), d)
	if kills < 3 {
		t.Fatalf("only %d kills happened before the run ended: the test did not exercise anything", kills)
	}
	if worst := c.maxField("step recovered", "recovery_seconds"); worst > 2 {
		t.Fatalf("a killed worker cost %.2f s before training resumed; the target is 2 s", worst)
	}
	// Ring-size changes reorder float32 sums; see pkg/coordinator's
	// TestFailuresDoNotChangeTheResult for why 1e-5 of the scale.
	if d > 1e-5 {
		t.Fatalf("the run with kills differs from the undisturbed one by %.3g of the parameters' scale", d)
	}
}

// TestChaosCoordinatorRestart kills the coordinator with SIGKILL in the
// middle of a run and starts it again on the same --out: it resumes from the
// newest checkpoint, the workers (which outlive it) join the new one, and the
// run ends bit for bit where an undisturbed run with the same workers ends.
func TestChaosCoordinatorRestart(t *testing.T) {
	args := []string{"--min-workers", "2", "--checkpoint-every", "20"}
	refOut := t.TempDir()
	rc, rgossip := startCoordinator(t, append(append(args, "--out", refOut), chaosRun...)...)
	startWorker(t, rgossip, "--id", "a")
	startWorker(t, rgossip, "--id", "b")
	if code := rc.wait(t, 3*time.Minute); code != 0 {
		t.Fatalf("undisturbed coordinator exited %d", code)
	}

	out := t.TempDir()
	gossipPort := freePort(t)
	coordArgs := append(append([]string{"--gossip-addr", "127.0.0.1:" + gossipPort}, args...), "--out", out)
	c1 := start(t, "coordinator", append(append([]string{"--grpc-addr", "127.0.0.1:0", "--gossip-fast", "--log-format", "json"}, coordArgs...), chaosRun...)...)
	c1.waitLog(t, time.Minute, "coordinator started", nil)
	join := "127.0.0.1:" + gossipPort
	wa := startWorker(t, join, "--id", "a")
	wb := startWorker(t, join, "--id", "b")
	c1.waitLog(t, time.Minute, "checkpoint written", func(l map[string]any) bool { return l["steps"].(float64) >= 60 })
	c1.signal(t, syscall.SIGKILL)
	c1.wait(t, 10*time.Second)

	c2 := start(t, "coordinator", append(append([]string{"--grpc-addr", "127.0.0.1:0", "--gossip-fast", "--log-format", "json"}, coordArgs...), chaosRun...)...)
	c2.waitLog(t, time.Minute, "resuming from checkpoint", nil)
	if code := c2.wait(t, 3*time.Minute); code != 0 {
		t.Fatalf("restarted coordinator exited %d", code)
	}
	checkSummary(t, out, 300)
	if isDone(wa) || isDone(wb) {
		t.Fatal("a worker did not outlive the coordinator")
	}
	if d := modelDiff(t, filepath.Join(refOut, "model.safetensors"), filepath.Join(out, "model.safetensors")); d != 0 {
		t.Fatalf("the resumed run differs from the undisturbed one by %.3g of the parameters' scale", d)
	}
}

// TestChaosStoppedWorker freezes a worker with SIGSTOP (its connections stay
// open, so only gossip or the step deadline can tell) with the default gossip
// timings, and checks that training resumes within 10 s; after SIGCONT the
// worker is admitted again.
func TestChaosStoppedWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPED in -short mode: waits for default gossip failure detection (several seconds)")
	}
	ref := referenceModel(t)
	out := t.TempDir()
	base := []string{"--grpc-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0", "--log-format", "json"}
	c := start(t, "coordinator", append(append(base, "--min-workers", "1", "--out", out), chaosRun...)...)
	gossip := c.waitLog(t, time.Minute, "coordinator started", nil)["gossip_addr"].(string)
	wbase := []string{"--join", gossip, "--grpc-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0", "--log-format", "json"}
	w0 := start(t, "worker", append(wbase, "--id", "s0")...)
	start(t, "worker", append(wbase, "--id", "s1")...)
	gen := c.waitLog(t, time.Minute, "ring formed", func(l map[string]any) bool { return l["workers"] == float64(2) })["generation"].(float64)
	w0.signal(t, syscall.SIGSTOP)
	stopped := time.Now()
	// Training goes on once a ring without the stopped worker is formed:
	// after an aborted step (stopped during compute or the all-reduce) or a
	// failed commit (stopped during the commit), whichever it hit.
	c.waitLog(t, 20*time.Second, "ring formed", func(l map[string]any) bool {
		return l["workers"] == float64(1) && l["generation"].(float64) > gen
	})
	took := time.Since(stopped)
	w0.signal(t, syscall.SIGCONT)
	if code := c.wait(t, 3*time.Minute); code != 0 {
		t.Fatalf("coordinator exited %d", code)
	}
	checkSummary(t, out, 300)
	d := modelDiff(t, ref, filepath.Join(out, "model.safetensors"))
	t.Logf("training resumed %.2f s after SIGSTOP; max |difference| / max |param| = %.3g", took.Seconds(), d)
	if took > 10*time.Second {
		t.Fatalf("a stopped worker cost %.1f s; the target is 10 s with default settings", took.Seconds())
	}
	if d > 1e-5 {
		t.Fatalf("the run differs from the undisturbed one by %.3g of the parameters' scale", d)
	}
}
