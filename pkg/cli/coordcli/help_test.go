package coordcli

import (
	"bytes"
	"context"
	"flag"
	"io"
	"math"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ringtrain/ringtrain/pkg/job"
	"github.com/ringtrain/ringtrain/pkg/report"
)

func TestCoordinatorHelpGrouped(t *testing.T) {
	opts := DefaultCoordinatorOptions()
	if err := CoordinatorHelp.Check(CoordinatorFlags(&opts, io.Discard)); err != nil {
		t.Error(err)
	}
	var stderr bytes.Buffer
	if code := Coordinator(context.Background(), []string{"--help"}, &stderr); code != 0 {
		t.Fatalf("--help: exit %d, want 0", code)
	}
	help := stderr.String()
	last := -1
	for _, title := range []string{"Data", "Model", "Optimization", "Outputs", "Checkpoints", "Cluster", "Security", "Operations", "Examples"} {
		i := strings.Index(help, "\n"+title+":\n")
		if i < 0 || i < last {
			t.Errorf("topic %q missing or out of order", title)
		}
		last = i
	}
	if strings.Contains(help, "\nOther:\n") {
		t.Error("some flags are in no topic")
	}
	// Every flag is listed by its name, as it always was.
	CoordinatorFlags(&opts, io.Discard).VisitAll(func(f *flag.Flag) {
		if !strings.Contains(help, "  --"+f.Name+" ") && !strings.Contains(help, "  --"+f.Name+"\n") {
			t.Errorf("--%s is not in the help", f.Name)
		}
	})
}

// TestDashboardAddress: the default address is 127.0.0.1:8070; when it is
// taken (here by the test itself, or by whatever holds it already), the
// coordinator serves on a free port and prints that URL; steps.csv is
// written with a row per step.
func TestDashboardAddress(t *testing.T) {
	if DefaultMetricsAddr != "127.0.0.1:8070" || DefaultCoordinatorOptions().MetricsAddr != DefaultMetricsAddr {
		t.Fatalf("default address %q, want 127.0.0.1:8070 (README says so)", DefaultCoordinatorOptions().MetricsAddr)
	}
	if ln, err := net.Listen("tcp", DefaultMetricsAddr); err == nil {
		defer ln.Close()
	}
	out := t.TempDir()
	var stderr bytes.Buffer
	args := []string{"--single-process", "--dataset", "gaussian", "--hidden", "2", "--batch", "16", "--epochs", "2", "--out", out,
		"--lr", "0.1", "--lr-schedule", "step", "--lr-step-epochs", "1", "--lr-gamma", "0.5"}
	if code := Coordinator(context.Background(), args, &stderr); code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	logs := stderr.String()
	if !strings.Contains(logs, "the default dashboard address is taken") {
		t.Errorf("no fallback warning:\n%s", logs)
	}
	m := regexp.MustCompile(`dashboard: open http://127\.0\.0\.1:(\d+)/`).FindStringSubmatch(logs)
	if m == nil || m[1] == "8070" {
		t.Errorf("dashboard URL %v, want one on another port:\n%s", m, logs)
	}
	rows, err := report.ReadStepsCSV(filepath.Join(out, job.StepsFile))
	if err != nil {
		t.Fatal(err)
	}
	// gaussian: 160 training rows, batch 16: 10 steps per epoch.
	if len(rows) != 20 || rows[19].Step != 20 || rows[19].Epoch != 2 || rows[0].WorldSize != 1 || !math.IsNaN(rows[0].ComputeMS) {
		t.Fatalf("steps.csv: %d rows, first %+v, last %+v", len(rows), rows[0], rows[len(rows)-1])
	}
	// The lr column is each step's scheduled rate: 0.1 in epoch 1, halved in epoch 2.
	if rows[0].LR != 0.1 || rows[9].LR != 0.1 || rows[10].LR != 0.05 || rows[19].LR != 0.05 {
		t.Fatalf("steps.csv lr: %v %v %v %v, want 0.1 0.1 0.05 0.05", rows[0].LR, rows[9].LR, rows[10].LR, rows[19].LR)
	}
}
