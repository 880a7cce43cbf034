package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// exactRun is the run of the exact-reduction tests: MNIST 1 vs 2, Adam
// (whose division by the root of the second moment amplifies any
// difference in the last bit), batch 96 in blocks of 16.
var exactRun = []string{"--reduction", "exact", "--exact-block", "16", "--optimizer", "adam", "--lr", "0.001",
	"--batch", "96", "--hidden", "64", "--epochs", "5", "--steps", "600", "--seed", "9", "--check-every", "10"}

// fileHash is the SHA-256 of a file, in hex.
func fileHash(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// exactReference is the single-process run's model.safetensors hash.
func exactReference(t *testing.T, args ...string) string {
	t.Helper()
	out := t.TempDir()
	p := start(t, "coordinator", append(append([]string{"--single-process", "--log-format", "json", "--out", out}, exactRun...), args...)...)
	if code := p.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("single-process run exited %d:\n%s", code, p.output())
	}
	return fileHash(t, filepath.Join(out, "model.safetensors"))
}

// TestExactProcessesBitIdentical: with --reduction exact, 3 worker
// processes write a model.safetensors with the same SHA-256 as the
// single-process trainer, for SGD, momentum and Adam over 600 steps; for
// Adam also the single-process trainer on 1 and 2 threads.
func TestExactProcessesBitIdentical(t *testing.T) {
	for _, opt := range [][]string{
		{"--optimizer", "adam", "--lr", "0.001"},
		{"--optimizer", "sgd", "--lr", "0.1"},
		{"--optimizer", "momentum", "--lr", "0.05", "--momentum", "0.9"},
	} {
		t.Run(opt[1], func(t *testing.T) {
			want := exactReference(t, append([]string{"--threads", "1"}, opt...)...)
			if opt[1] == "adam" {
				if got := exactReference(t, append([]string{"--threads", "2"}, opt...)...); got != want {
					t.Fatalf("single process, 2 threads: model %s, 1 thread: %s", got, want)
				}
			}
			out := t.TempDir()
			c, gossip := startCoordinator(t, append(append([]string{"--min-workers", "3", "--out", out}, exactRun...), opt...)...)
			for i := range 3 {
				startWorker(t, gossip, "--id", "x"+strconv.Itoa(i), "--threads", "1")
			}
			if code := c.wait(t, 3*time.Minute); code != 0 {
				t.Fatalf("coordinator exited %d", code)
			}
			if got := fileHash(t, filepath.Join(out, "model.safetensors")); got != want {
				t.Fatalf("3 worker processes: model %s, single process: %s", got, want)
			}
		})
	}
}

// TestExactChaosEndsOnTheSameBits kills workers with SIGKILL and starts
// them again, freezes one with SIGSTOP, kills the coordinator with SIGKILL
// and starts it again on the same --out (it resumes from its newest
// checkpoint), and checks that the run's model.safetensors has the SHA-256
// of the undisturbed single-process run.
func TestExactChaosEndsOnTheSameBits(t *testing.T) {
	want := exactReference(t)
	out := t.TempDir()
	gossipPort := freePort(t)
	join := "127.0.0.1:" + gossipPort
	coordArgs := append([]string{"--grpc-addr", "127.0.0.1:0", "--gossip-addr", join, "--gossip-fast", "--log-format", "json",
		"--min-workers", "1", "--checkpoint-every", "20", "--step-timeout", "5s", "--out", out}, exactRun...)
	c1 := start(t, "coordinator", coordArgs...)
	c1.waitLog(t, time.Minute, "coordinator started", nil)
	workers := make([]*proc, 3)
	for i := range workers {
		workers[i] = startWorker(t, join, "--id", "w"+strconv.Itoa(i))
	}
	c1.waitLog(t, time.Minute, "ring formed", func(l map[string]any) bool { return l["workers"] == float64(3) })
	rng := rand.New(rand.NewPCG(3, 4))
	kill := func(c *proc, n int) int {
		kills := 0
		for kills < n && !isDone(c) {
			time.Sleep(time.Duration(100+rng.IntN(200)) * time.Millisecond)
			i := rng.IntN(len(workers))
			workers[i].signal(t, syscall.SIGKILL)
			workers[i].wait(t, 10*time.Second)
			workers[i] = startWorker(t, join, "--id", "w"+strconv.Itoa(i))
			kills++
		}
		return kills
	}
	kills := kill(c1, 2)
	// A frozen worker: its connections stay open; the step deadline or
	// gossip tells. Freeze one once the restarted worker is back in the
	// ring, so that the frozen one is in it.
	gen := c1.maxField("ring formed", "generation")
	c1.waitLog(t, time.Minute, "ring formed", func(l map[string]any) bool {
		return l["generation"].(float64) > gen && l["workers"] == float64(3)
	})
	aborted := c1.count("step aborted")
	workers[0].signal(t, syscall.SIGSTOP)
	waitCount(t, c1, "step aborted", aborted+1, time.Minute)
	workers[0].signal(t, syscall.SIGCONT)
	c1.waitLog(t, time.Minute, "checkpoint written", func(l map[string]any) bool { return l["steps"].(float64) >= 300 })
	c1.signal(t, syscall.SIGKILL)
	c1.wait(t, 10*time.Second)

	c2 := start(t, "coordinator", coordArgs...)
	c2.waitLog(t, time.Minute, "resuming from checkpoint", nil)
	kills += kill(c2, 2)
	if code := c2.wait(t, 3*time.Minute); code != 0 {
		t.Fatalf("restarted coordinator exited %d", code)
	}
	t.Logf("%d worker kills, %d aborted attempts after the restart", kills, c2.count("step aborted"))
	if got := fileHash(t, filepath.Join(out, "model.safetensors")); got != want {
		t.Fatalf("the disturbed run's model %s, the undisturbed single-process run's %s", got, want)
	}
}

// waitCount polls until p has logged msg at least n times.
func waitCount(t *testing.T, p *proc, msg string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for p.count(msg) < n {
		if time.Now().After(deadline) || isDone(p) {
			t.Fatalf("%s: %d log lines %q, want %d within %v", p.name, p.count(msg), msg, n, timeout)
		}
		select {
		case <-p.done:
		case <-time.After(20 * time.Millisecond):
		}
	}
}
