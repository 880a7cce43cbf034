package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringtrain/ringtrain/pkg/coordinator"
	"github.com/ringtrain/ringtrain/pkg/job"
	"github.com/ringtrain/ringtrain/pkg/metrics"
	"github.com/ringtrain/ringtrain/pkg/report"
	"github.com/ringtrain/ringtrain/pkg/straggler"
	"github.com/ringtrain/ringtrain/pkg/worker"
)

// slowDelay is how much the slowed worker adds to every step's compute.
const slowDelay = 30 * time.Millisecond

// records is a slog handler that keeps every record.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// find returns the attributes of the records with message msg.
func (r *records) find(msg string) []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]string
	for _, rec := range r.recs {
		if rec.Message != msg {
			continue
		}
		m := map[string]string{}
		rec.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
		out = append(out, m)
	}
	return out
}

// metricsRegistry is a registry with the coordinator's metrics.
type metricsRegistry struct {
	reg   *prometheus.Registry
	coord *metrics.Coordinator
}

func newMetricsRegistry() *metricsRegistry {
	reg := metrics.NewRegistry()
	return &metricsRegistry{reg: reg, coord: metrics.NewCoordinator(reg)}
}

// straggler returns ringtrain_worker_straggler{worker=w}, if present.
func (m *metricsRegistry) straggler(t *testing.T, w string) (float64, bool) {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ringtrain_worker_straggler" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "worker" && l.GetValue() == w {
					return mt.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// watchedRun is a short MNIST 1-vs-2 run on an in-memory cluster of two
// workers and one slowed on purpose, watched by a Hub.
type watchedRun struct {
	hub  *Hub
	logs *records
	out  string
	done chan error
	sum  *report.Summary
}

// startRun starts the run in the background; the cluster lives until the
// test ends, so the page still shows the ring after the last step.
func startRun(t *testing.T, steps int) (*watchedRun, *metricsRegistry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	logs := &records{}
	log := slog.New(logs)
	cfg := job.Defaults()
	cfg.Hidden = job.IntList{256, 128}
	cfg.Steps = steps
	cfg.CheckpointEvery = 50
	cfg.Out = t.TempDir()
	p, err := job.Prepare(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	reg := newMetricsRegistry()
	hub := New(nil)
	obs, err := NewWatch(hub, straggler.Config{Window: 10}, log, reg.coord)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := coordinator.MakeCluster(ctx, coordinator.Config{MinWorkers: 3, Log: log, Metrics: reg.coord, Observer: obs},
		coordinator.Job{Model: p.Model, Optimizer: p.OptCfg, Train: p.Train, Params: p.Net.Params, OptState: p.Opt}, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if _, err := cl.AddWorkerWith("w2-slow", func(c *worker.Config) { c.ComputeDelay = slowDelay }); err != nil {
		t.Fatal(err)
	}
	r := &watchedRun{hub: hub, logs: logs, out: cfg.Out, done: make(chan error, 1)}
	go func() {
		sum, err := job.Run(ctx, p, cl.Coordinator, job.Env{Log: log, Metrics: reg.coord, Watch: hub})
		r.sum = sum
		r.done <- err
	}()
	return r, reg
}

func (r *watchedRun) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("the run did not finish in 3 minutes")
	}
}

// TestStragglerNamed slows one worker of three on purpose and checks that
// it, and only it, is named: a log line with its figures, the metric, and
// the dashboard's state; and that steps.csv has a row per step.
func TestStragglerNamed(t *testing.T) {
	const steps = 30
	r, reg := startRun(t, steps)
	r.wait(t)

	named := r.logs.find("straggler: worker computes slower than the others")
	if len(named) == 0 {
		t.Fatal("no straggler was logged")
	}
	for _, a := range named {
		if a["worker"] != "w2-slow" {
			t.Errorf("worker %s named a straggler, want only w2-slow: %v", a["worker"], a)
		}
		med, _ := strconv.ParseFloat(a["compute_ms_median"], 64)
		others, _ := strconv.ParseFloat(a["others_compute_ms_median"], 64)
		if med < float64(slowDelay/time.Millisecond) || !(med > others) || a["window_steps"] != "10" {
			t.Errorf("log line figures %v: want a median of at least %v above the others'", a, slowDelay)
		}
	}
	if v, ok := reg.straggler(t, "w2-slow"); !ok || v != 1 {
		t.Errorf("ringtrain_worker_straggler{worker=w2-slow} = %v (present: %v), want 1", v, ok)
	}
	for _, w := range []string{"w0", "w1"} {
		if v, ok := reg.straggler(t, w); ok {
			t.Errorf("ringtrain_worker_straggler{worker=%s} = %v, want no series (never named)", w, v)
		}
	}
	s := r.hub.Snapshot(0)
	if len(s.Stragglers) != 1 || s.Stragglers[0] != "w2-slow" {
		t.Errorf("dashboard stragglers %v, want [w2-slow]", s.Stragglers)
	}
	if s.Status != StatusDone || len(s.Steps) != steps || s.Progress.Steps != steps || len(s.Workers) != 3 {
		t.Errorf("dashboard: status %s, %d steps, progress %+v, %d workers", s.Status, len(s.Steps), s.Progress, len(s.Workers))
	}
	rows, err := report.ReadStepsCSV(filepath.Join(r.out, job.StepsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != steps || rows[steps-1].Step != steps || rows[0].WorldSize != 3 || !(rows[0].ComputeMS >= float64(slowDelay/time.Millisecond)) {
		t.Errorf("steps.csv: %d rows, first %+v", len(rows), rows[0])
	}
}

// TestBrowser opens the dashboard of a short run in headless Chromium,
// waits until the curve has points and the ring lists the three workers
// with the straggler highlighted, and saves screenshots (a wide one and a
// phone-sized one) under $RINGTRAIN_SCREENSHOT_DIR (default: the test's
// temporary directory). Without Chromium it says SKIPPED and why.
func TestBrowser(t *testing.T) {
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		fmt.Fprintln(os.Stderr, "SKIPPED TestBrowser: no chromium on PATH (Debian: apt-get install chromium; scripts/test.sh installs it as root)")
		t.Skip("SKIPPED: no chromium on PATH (Debian package chromium)")
	}
	r, reg := startRun(t, 120)
	srv := httptest.NewServer(metrics.Handler(reg.reg, nil, r.hub.Handler()))
	defer srv.Close()
	profile := t.TempDir() // the browser's profile, removed with the test
	run := func(ctx context.Context, args ...string) ([]byte, error) {
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
			"--hide-scrollbars", "--user-data-dir=" + profile, "--virtual-time-budget=3000"}
		cmd := exec.CommandContext(ctx, browser, append(base, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return out, fmt.Errorf("%s: %w: %s", browser, err, tail(stderr.String()))
		}
		return out, nil
	}
	points := regexp.MustCompile(`data-points="(\d+)"`)
	workers := regexp.MustCompile(`data-workers="(\d+)"`)
	slow := regexp.MustCompile(`data-stragglers="w2-slow"`)
	deadline := time.Now().Add(2 * time.Minute)
	var dom []byte
	for sawLive := false; ; {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := run(ctx, "--dump-dom", srv.URL+"/")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		dom = out
		p, w := points.FindSubmatch(dom), workers.FindSubmatch(dom)
		if !sawLive && bytes.Contains(dom, []byte(`data-status="running"`)) && p != nil && string(p[1]) != "0" {
			sawLive = true // the page followed the run while it ran
		}
		if p != nil && w != nil && string(p[1]) != "0" && string(w[1]) == "3" && slow.Match(dom) &&
			bytes.Contains(dom, []byte(`data-status="done"`)) {
			t.Logf("page shows %s points, %s workers, live during the run: %v", p[1], w[1], sawLive)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page never showed points, the three workers and the straggler; last DOM:\n%s", tail(string(dom)))
		}
	}
	r.wait(t)
	for _, want := range []string{"w0", "w1", "w2-slow", `class="straggler"`, "joined", "straggler"} {
		if !bytes.Contains(dom, []byte(want)) {
			t.Errorf("the page has no %q", want)
		}
	}
	dir := os.Getenv("RINGTRAIN_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	for _, shot := range []struct{ name, size string }{{"dashboard.png", "1280,920"}, {"dashboard-phone.png", "412,1900"}} {
		path, err := filepath.Abs(filepath.Join(dir, shot.name))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		_, err = run(ctx, "--window-size="+shot.size, "--screenshot="+path, srv.URL+"/")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		t.Logf("screenshot %s: %dx%d", path, img.Bounds().Dx(), img.Bounds().Dy())
	}
}

func tail(s string) string {
	if len(s) > 3000 {
		return "..." + s[len(s)-3000:]
	}
	return s
}
