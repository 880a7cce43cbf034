package coordcli

import (
	"github.com/ringtrain/ringtrain/pkg/cli"

	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer the coordinator can log to while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// poll waits until cond holds, failing the test after the deadline.
func poll(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func checkpoints(out string) []string {
	m, _ := filepath.Glob(filepath.Join(out, "checkpoints", "ckpt-*.safetensors"))
	return m
}

// TestInterruptedCoordinatorExitCode: a run cancelled by a signal after its
// first checkpoint writes its outputs and exits 128+signal (143 for SIGTERM,
// 130 for SIGINT), resumable; one that could not save its checkpoint exits 1
// naming what was not saved; a cancellation that is no signal stays 1.
func TestInterruptedCoordinatorExitCode(t *testing.T) {
	base := []string{"--dataset", "gaussian", "--hidden", "4", "--batch", "16", "--epochs", "1000000", "--checkpoint-every", "5",
		"--grpc-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0", "--gossip-fast"}
	tests := []struct {
		name  string
		extra []string
		cause error
		// breakCheckpoints makes the checkpoint directory unusable once the
		// first checkpoint is written, and waits for a failed attempt.
		breakCheckpoints bool
		code             int
		log              string
	}{
		{"single-process SIGTERM", []string{"--single-process"}, cli.Interrupted{Signal: syscall.SIGTERM}, false, 143, "signal=SIGTERM"},
		{"single-process SIGINT", []string{"--single-process"}, cli.Interrupted{Signal: syscall.SIGINT}, false, 130, "signal=SIGINT"},
		{"local worker SIGTERM", []string{"--local-workers", "1"}, cli.Interrupted{Signal: syscall.SIGTERM}, false, 143, "signal=SIGTERM"},
		{"checkpoint not saved", []string{"--single-process"}, cli.Interrupted{Signal: syscall.SIGTERM}, true, 1, "not saved: the checkpoint at step"},
		{"cancelled without a signal", []string{"--single-process"}, context.Canceled, false, 1, "training failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			var stderr syncBuffer
			done := make(chan int, 1)
			go func() { done <- Coordinator(ctx, append(append(base, "--out", out), tc.extra...), &stderr) }()
			poll(t, "checkpoint", 30*time.Second, func() bool { return len(checkpoints(out)) > 0 })
			if tc.breakCheckpoints {
				// A file where the directory was: every later Save fails.
				dir := filepath.Join(out, "checkpoints")
				if err := os.Rename(dir, dir+".old"); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(dir, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				poll(t, "failed checkpoint", 30*time.Second, func() bool { return strings.Contains(stderr.String(), "checkpoint failed") })
			}
			cancel(tc.cause)
			var code int
			select {
			case code = <-done:
			case <-time.After(time.Minute):
				t.Fatal("the coordinator did not stop within a minute of the cancellation")
			}
			logs := stderr.String()
			if code != tc.code || !strings.Contains(logs, tc.log) {
				t.Fatalf("exit %d (want %d), log lacks %q:\n%s", code, tc.code, tc.log, tail(logs))
			}
			for _, f := range []string{"model.safetensors", "summary.json", "metrics.csv"} {
				if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
					t.Fatalf("%s after the interruption: %v", f, err)
				}
			}
			if tc.code > 128 && (!strings.Contains(logs, "outputs and checkpoint written") || len(checkpoints(out)) == 0) {
				t.Fatalf("no checkpoint reported or left:\n%s", tail(logs))
			}
		})
	}
}

// tail returns the last lines of a long log.
func tail(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}
