package dashboard

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/pkg/coordinator"
	"github.com/ringtrain/ringtrain/pkg/job"
	"github.com/ringtrain/ringtrain/pkg/report"
	"github.com/ringtrain/ringtrain/pkg/straggler"
)

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func step(n int, elapsed float64) report.StepRecord {
	return report.StepRecord{Step: n, Epoch: 1, TrainLoss: 1 / float64(n), TrainAccuracy: 0.5, LR: 0.1,
		SamplesPerSecond: 640, WorldSize: 2, ComputeMS: 5, AllreduceMS: 1, ElapsedSeconds: elapsed}
}

func TestHubSnapshot(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	tests := []struct {
		name  string
		feed  func(h *Hub)
		since int
		check func(t *testing.T, s State)
	}{
		{"before the start", func(h *Hub) {}, 0, func(t *testing.T, s State) {
			if s.Status != StatusStarting || len(s.Steps) != 0 || s.Progress.ETASeconds != nil || s.Workers == nil {
				t.Errorf("got %+v", s)
			}
		}},
		{"steps since", func(h *Hub) {
			h.Start(job.RunInfo{TotalSteps: 10, Epochs: 1, Batch: 64})
			for i := 1; i <= 5; i++ {
				h.Step(step(i, 0.1*float64(i)))
			}
		}, 3, func(t *testing.T, s State) {
			if len(s.Steps) != 2 || s.Steps[0].Step != 4 || s.Steps[1].Step != 5 {
				t.Errorf("steps since 3: %+v", s.Steps)
			}
			if s.Progress.Steps != 5 || s.Progress.Fraction != 0.5 {
				t.Errorf("progress %+v", s.Progress)
			}
			// 4 steps in 0.4 s: 10 steps/s, 640 samples/s, 5 steps left: 0.5 s.
			if s.Progress.StepsPerSecond == nil || math.Abs(*s.Progress.StepsPerSecond-10) > 1e-9 ||
				math.Abs(*s.Progress.SamplesPerSecond-640) > 1e-6 || math.Abs(*s.Progress.ETASeconds-0.5) > 1e-9 {
				t.Errorf("rate %+v", s.Progress)
			}
		}},
		{"a resumed run's steps and epochs", func(h *Hub) {
			h.Start(job.RunInfo{TotalSteps: 10, Steps: []report.StepRecord{step(1, 0.1), step(2, 0.2)},
				Records: []report.EpochRecord{{Epoch: 1, Step: 2}}})
			h.Step(step(3, 0.3))
		}, 0, func(t *testing.T, s State) {
			if len(s.Steps) != 3 || len(s.Epochs) != 1 {
				t.Errorf("steps %d epochs %d, want 3 and 1", len(s.Steps), len(s.Epochs))
			}
		}},
		{"ring, stragglers and events", func(h *Hub) {
			h.ObserveEvent(coordinator.Event{Kind: coordinator.EventJoined, Worker: "b", Step: -1})
			h.ObserveEvent(coordinator.Event{Kind: coordinator.EventJoined, Worker: "a", Step: -1})
			h.ObserveEvent(coordinator.Event{Kind: coordinator.EventRing, Step: -1})
			h.ObserveStep(coordinator.StepObservation{Step: 0, Generation: 1, Workers: []coordinator.WorkerStep{
				{ID: "a", Compute: 4 * time.Millisecond, Allreduce: time.Millisecond, Samples: 32},
				{ID: "b", Compute: 40 * time.Millisecond, Allreduce: time.Millisecond, Samples: 32}}})
			h.Straggler(straggler.Change{Worker: "b", Straggler: true, Median: 40 * time.Millisecond, Ring: 4 * time.Millisecond, Ratio: 10, Window: 20})
			h.ObserveEvent(coordinator.Event{Kind: coordinator.EventAborted, Step: 1})
			h.ObserveEvent(coordinator.Event{Kind: coordinator.EventRecovered, Step: 1})
		}, 0, func(t *testing.T, s State) {
			if len(s.Workers) != 2 || s.Workers[0].ID != "a" || s.Workers[1].ID != "b" {
				t.Fatalf("workers %+v", s.Workers)
			}
			if b := s.Workers[1]; !b.Straggler || b.StragglerRatio != 10 || b.ComputeMS != 40 || b.State != "training" {
				t.Errorf("worker b %+v", b)
			}
			if len(s.Stragglers) != 1 || s.Stragglers[0] != "b" || s.Generation != 1 || s.Aborts != 1 || s.Recoveries != 1 {
				t.Errorf("stragglers %v generation %d aborts %d recoveries %d", s.Stragglers, s.Generation, s.Aborts, s.Recoveries)
			}
			var kinds []string
			for _, e := range s.Events {
				kinds = append(kinds, e.Kind)
			}
			if got := strings.Join(kinds, ","); got != "joined,joined,straggler,aborted,recovered" {
				t.Errorf("events %s (ring formations are not listed)", got)
			}
		}},
		{"a failed straggler is no longer one", func(h *Hub) {
			h.Straggler(straggler.Change{Worker: "b", Straggler: true, Ratio: 3})
			h.ObserveEvent(coordinator.Event{Kind: coordinator.EventFailed, Worker: "b", Step: -1})
		}, 0, func(t *testing.T, s State) {
			if len(s.Stragglers) != 0 || s.Workers[0].State != "failed" {
				t.Errorf("stragglers %v workers %+v", s.Stragglers, s.Workers)
			}
		}},
		{"done", func(h *Hub) {
			h.Start(job.RunInfo{TotalSteps: 10})
			h.Step(step(1, 0.1))
			h.Checkpoint("/out/checkpoints/c1", 1, nil)
			h.Checkpoint("", 2, errors.New("disk full"))
			h.Finish(&report.Summary{Steps: 1}, nil)
		}, 0, func(t *testing.T, s State) {
			if s.Status != StatusDone || s.Progress.Fraction != 1 || s.Summary == nil || len(s.Checkpoints) != 2 || s.Checkpoints[1].Error != "disk full" {
				t.Errorf("got status %s progress %+v checkpoints %+v", s.Status, s.Progress, s.Checkpoints)
			}
		}},
		{"interrupted and failed", func(h *Hub) {
			h.Finish(nil, &job.Interrupted{Cause: errors.New("SIGTERM")})
		}, 0, func(t *testing.T, s State) {
			if s.Status != StatusInterrupted || !strings.Contains(s.Error, "SIGTERM") {
				t.Errorf("got %s %q", s.Status, s.Error)
			}
		}},
		{"events are capped", func(h *Hub) {
			for range maxEvents + 10 {
				h.ObserveEvent(coordinator.Event{Kind: coordinator.EventAborted, Step: 1})
			}
		}, 0, func(t *testing.T, s State) {
			if len(s.Events) != maxEvents || s.Aborts != maxEvents+10 {
				t.Errorf("%d events, %d aborts", len(s.Events), s.Aborts)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := New(clk.now)
			tc.feed(h)
			tc.check(t, h.Snapshot(tc.since))
		})
	}
}

func TestHandler(t *testing.T) {
	h := New(nil)
	h.Start(job.RunInfo{TotalSteps: 4, Config: map[string]string{"lr": "0.1"}})
	h.Step(step(1, 0.1))
	h.Step(report.StepRecord{Step: 2, Epoch: 1, TrainLoss: math.NaN(), ComputeMS: math.NaN(), AllreduceMS: math.NaN()})
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	tests := []struct {
		path, wantType, wantBody string
		code                     int
	}{
		{"/", "text/html", `<canvas id="loss"`, 200},
		{"/assets/app.js", "javascript", "/api/state?since=", 200},
		{"/assets/style.css", "text/css", "@media", 200},
		{"/api/state", "application/json", `"status":"running"`, 200},
		{"/api/state?since=1", "application/json", `"steps":[{"step":2,`, 200},
		{"/api/state?since=x", "text/plain", "since: want a step number", 400},
		{"/api/state?since=-1", "text/plain", "since", 400},
		{"/nothing", "text/plain", "404", 404},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			r, err := http.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Body.Close()
			b, _ := io.ReadAll(r.Body)
			if r.StatusCode != tc.code || !strings.Contains(r.Header.Get("Content-Type"), tc.wantType) || !strings.Contains(string(b), tc.wantBody) {
				t.Fatalf("%s: %d %s %.300q, want %d %s containing %q", tc.path, r.StatusCode, r.Header.Get("Content-Type"), b, tc.code, tc.wantType, tc.wantBody)
			}
		})
	}
	// A NaN figure is null in JSON, and the document decodes.
	r, err := http.Get(srv.URL + "/api/state")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(r.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	steps := doc["steps"].([]any)
	if len(steps) != 2 || steps[1].(map[string]any)["train_loss"] != nil {
		t.Fatalf("steps %v, want 2 with the second's NaN loss as null", steps)
	}
	for _, key := range []string{"status", "progress", "steps", "epochs", "workers", "stragglers", "events", "checkpoints", "config", "network"} {
		if _, ok := doc[key]; !ok {
			t.Errorf("no %q in the state document (README documents it)", key)
		}
	}
}

// TestAssetsOffline: the page loads nothing from elsewhere.
func TestAssetsOffline(t *testing.T) {
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import|https?://`)
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(path)
		if err != nil {
			return err
		}
		if m := external.Find(b); m != nil {
			t.Errorf("%s refers to another site (%q): the page must work offline", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
