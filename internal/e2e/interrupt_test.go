package e2e

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestInterruptedCoordinatorExitCode: a coordinator process that gets a real
// SIGTERM (SIGINT) after its first checkpoint writes its outputs and exits
// 143 (130): interrupted and resumable, not failed (1).
func TestInterruptedCoordinatorExitCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		code int
	}{
		{"SIGTERM", syscall.SIGTERM, 143},
		{"SIGINT", syscall.SIGINT, 130},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			c, _ := startCoordinator(t, "--local-workers", "1", "--dataset", "gaussian", "--hidden", "4", "--epochs", "1000000",
				"--checkpoint-every", "5", "--out", out)
			c.waitLog(t, time.Minute, "checkpoint written", nil)
			c.signal(t, tc.sig)
			if code := c.wait(t, time.Minute); code != tc.code {
				t.Fatalf("exit code %d after %s, want %d", code, tc.name, tc.code)
			}
			l := c.waitLog(t, time.Second, "interrupted; outputs and checkpoint written: a rerun resumes from the checkpoint", nil)
			if l["signal"] != tc.name || l["exit_code"] != float64(tc.code) {
				t.Fatalf("interruption logged as %v", l)
			}
			for _, f := range []string{"model.safetensors", "summary.json", "metrics.csv", l["checkpoint"].(string)} {
				if !filepath.IsAbs(f) {
					f = filepath.Join(out, f)
				}
				if st, err := os.Stat(f); err != nil || st.Size() == 0 {
					t.Fatalf("after %s: %v", tc.name, err)
				}
			}
		})
	}
}
