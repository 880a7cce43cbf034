// Package dashboard is the coordinator's live view of a run: a page served
// on the coordinator's HTTP address (beside /metrics) and the JSON endpoint
// it polls, /api/state, which scripts can read too.
//
// A Hub collects what the page shows: it is the job's Watcher (steps,
// epochs, checkpoints, the configuration, the end of the run) and the
// coordinator's Observer (each worker's compute and all-reduce time per
// step, membership events, aborts and recoveries), and it is told which
// workers are stragglers. Every asset is embedded in the binary (no CDN):
// the page works offline.
package dashboard

import (
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ringtrain/ringtrain/pkg/coordinator"
	"github.com/ringtrain/ringtrain/pkg/job"
	"github.com/ringtrain/ringtrain/pkg/report"
	"github.com/ringtrain/ringtrain/pkg/straggler"
)

//go:embed assets
var assets embed.FS

// Limits of what a Hub keeps.
const (
	maxEvents      = 200
	maxCheckpoints = 50
	// rateWindow is how many recent steps the throughput and ETA are
	// measured over.
	rateWindow = 20
)

// Run statuses.
const (
	StatusStarting    = "starting"
	StatusRunning     = "running"
	StatusDone        = "done"
	StatusFailed      = "failed"
	StatusInterrupted = "interrupted"
)

// Hub holds the state of the run the page shows. Its methods are safe for
// concurrent use. Make one with New.
type Hub struct {
	now func() time.Time

	mu          sync.Mutex
	started     time.Time
	status      string
	err         string
	info        job.RunInfo
	steps       []report.StepRecord
	epochs      []report.EpochRecord
	workers     map[string]*Worker
	events      []Event
	checkpoints []Checkpoint
	aborts      int
	recoveries  int
	generation  uint64
	summary     *report.Summary
}

// New returns an empty Hub reading time from now (nil: time.Now).
func New(now func() time.Time) *Hub {
	if now == nil {
		now = time.Now
	}
	return &Hub{now: now, started: now(), status: StatusStarting, workers: map[string]*Worker{}}
}

// Worker is one worker as the page shows it.
type Worker struct {
	ID string `json:"id"`
	// State is "training" (in the last committed step's ring), "idle"
	// (joined, not in the ring), "suspect", "left" or "failed".
	State string `json:"state"`
	// ComputeMS and AllreduceMS are its figures in the last step it ran.
	// ExposedMS is the part of AllreduceMS after compute ended (the rest
	// was hidden behind backward).
	ComputeMS   float64 `json:"compute_ms"`
	AllreduceMS float64 `json:"allreduce_ms"`
	ExposedMS   float64 `json:"exposed_ms"`
	Samples     int     `json:"samples"`
	LastStep    int     `json:"last_step"`
	// Straggler is set while the straggler detector names the worker;
	// StragglerRatio is its median compute time over the others'.
	Straggler      bool    `json:"straggler"`
	StragglerRatio float64 `json:"straggler_ratio,omitempty"`
}

// Event is one entry of the page's event list.
type Event struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Worker string    `json:"worker,omitempty"`
	Step   int       `json:"step"` // -1: none
	Detail string    `json:"detail,omitempty"`
}

// Checkpoint is one checkpoint written (or that failed).
type Checkpoint struct {
	Time  time.Time `json:"time"`
	Path  string    `json:"path,omitempty"`
	Steps int       `json:"steps"`
	Error string    `json:"error,omitempty"`
}

// Progress is where the run stands.
type Progress struct {
	Steps      int     `json:"steps"`
	TotalSteps int     `json:"total_steps"`
	Epoch      int     `json:"epoch"`
	Epochs     int     `json:"epochs"`
	Fraction   float64 `json:"fraction"`
	// SamplesPerSecond and StepsPerSecond are over the last steps;
	// ETASeconds is the remaining steps at that pace (null before two
	// steps are known).
	SamplesPerSecond *float64 `json:"samples_per_second"`
	StepsPerSecond   *float64 `json:"steps_per_second"`
	ETASeconds       *float64 `json:"eta_seconds"`
}

// State is the document GET /api/state returns (see README.md,
// "The live dashboard", for every field).
type State struct {
	Status         string               `json:"status"`
	Error          string               `json:"error,omitempty"`
	Now            time.Time            `json:"now"`
	Started        time.Time            `json:"started"`
	ElapsedSeconds float64              `json:"elapsed_seconds"`
	Network        string               `json:"network"`
	Params         int                  `json:"params"`
	Batch          int                  `json:"batch"`
	Config         map[string]string    `json:"config"`
	Progress       Progress             `json:"progress"`
	StepsSince     int                  `json:"steps_since"`
	Steps          []report.StepRecord  `json:"steps"`
	Epochs         []report.EpochRecord `json:"epochs"`
	Workers        []Worker             `json:"workers"`
	Stragglers     []string             `json:"stragglers"`
	Generation     uint64               `json:"ring_generation"`
	Aborts         int                  `json:"aborted_attempts"`
	Recoveries     int                  `json:"recoveries"`
	Events         []Event              `json:"events"`
	Checkpoints    []Checkpoint         `json:"checkpoints"`
	Summary        *report.Summary      `json:"summary,omitempty"`
}

// Start implements job.Watcher.
func (h *Hub) Start(info job.RunInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.info = info
	h.steps = slices.Clone(info.Steps)
	h.epochs = slices.Clone(info.Records)
	h.status = StatusRunning
}

// Step implements job.Watcher.
func (h *Hub) Step(r report.StepRecord) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.steps = append(h.steps, r)
}

// Epoch implements job.Watcher.
func (h *Hub) Epoch(r report.EpochRecord) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.epochs = append(h.epochs, r)
}

// Checkpoint implements job.Watcher.
func (h *Hub) Checkpoint(path string, steps int, err error) {
	c := Checkpoint{Time: h.now(), Path: path, Steps: steps}
	if err != nil {
		c.Error = err.Error()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checkpoints = appendCapped(h.checkpoints, c, maxCheckpoints)
}

// Finish implements job.Watcher.
func (h *Hub) Finish(sum *report.Summary, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.summary = sum
	var stopped *job.Interrupted
	switch {
	case err == nil:
		h.status = StatusDone
	case errors.As(err, &stopped):
		h.status, h.err = StatusInterrupted, err.Error()
	default:
		h.status, h.err = StatusFailed, err.Error()
	}
}

// ObserveStep implements coordinator.Observer.
func (h *Hub) ObserveStep(o coordinator.StepObservation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.generation = o.Generation
	in := map[string]bool{}
	for _, ws := range o.Workers {
		in[ws.ID] = true
		w := h.worker(ws.ID)
		w.State = "training"
		w.ComputeMS, w.AllreduceMS, w.ExposedMS = ms(ws.Compute), ms(ws.Allreduce), ms(ws.Exposed)
		w.Samples, w.LastStep = ws.Samples, o.Step+1
	}
	for id, w := range h.workers {
		if !in[id] && w.State == "training" {
			w.State = "idle"
		}
	}
}

// ObserveEvent implements coordinator.Observer.
func (h *Hub) ObserveEvent(e coordinator.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch e.Kind {
	case coordinator.EventJoined, coordinator.EventReadmitted:
		h.worker(e.Worker).State = "idle"
	case coordinator.EventLeft, coordinator.EventFailed, coordinator.EventSuspect:
		w := h.worker(e.Worker)
		w.State = e.Kind
		w.Straggler, w.StragglerRatio = false, 0
	case coordinator.EventAborted:
		h.aborts++
	case coordinator.EventRecovered:
		h.recoveries++
	}
	if e.Kind == coordinator.EventRing {
		return // every step after an abort forms one: the list would drown
	}
	h.events = appendCapped(h.events, Event{Time: e.Time, Kind: e.Kind, Worker: e.Worker, Step: e.Step, Detail: e.Detail}, maxEvents)
}

// Straggler records a change of the straggler detector, also as an event.
func (h *Hub) Straggler(c straggler.Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := h.worker(c.Worker)
	w.Straggler, w.StragglerRatio = c.Straggler, 0
	kind, detail := "straggler cleared", ""
	if c.Straggler {
		w.StragglerRatio = c.Ratio
		kind = "straggler"
		detail = strconv.FormatFloat(c.Ratio, 'f', 1, 64) + "x the others' median compute time (" +
			strconv.FormatFloat(ms(c.Median), 'f', 1, 64) + " ms vs " + strconv.FormatFloat(ms(c.Ring), 'f', 1, 64) +
			" ms over " + strconv.Itoa(c.Window) + " steps)"
	}
	h.events = appendCapped(h.events, Event{Time: h.now(), Kind: kind, Worker: c.Worker, Step: -1, Detail: detail}, maxEvents)
}

func (h *Hub) worker(id string) *Worker {
	w := h.workers[id]
	if w == nil {
		w = &Worker{ID: id, State: "idle"}
		h.workers[id] = w
	}
	return w
}

// Snapshot returns the state with the steps after step since (0: all).
func (h *Hub) Snapshot(since int) State {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	s := State{
		Status: h.status, Error: h.err, Now: now, Started: h.started, ElapsedSeconds: now.Sub(h.started).Seconds(),
		Network: h.info.Network, Params: h.info.Params, Batch: h.info.Batch, Config: h.info.Config,
		StepsSince: since, Epochs: slices.Clone(h.epochs), Generation: h.generation,
		Aborts: h.aborts, Recoveries: h.recoveries, Events: slices.Clone(h.events),
		Checkpoints: slices.Clone(h.checkpoints), Summary: h.summary, Stragglers: []string{},
	}
	if s.Config == nil {
		s.Config = map[string]string{}
	}
	i, _ := slices.BinarySearchFunc(h.steps, since, func(r report.StepRecord, step int) int { return r.Step - step - 1 })
	s.Steps = slices.Clone(h.steps[i:])
	if s.Steps == nil {
		s.Steps = []report.StepRecord{}
	}
	if s.Epochs == nil {
		s.Epochs = []report.EpochRecord{}
	}
	if s.Events == nil {
		s.Events = []Event{}
	}
	if s.Checkpoints == nil {
		s.Checkpoints = []Checkpoint{}
	}
	s.Workers = make([]Worker, 0, len(h.workers))
	for _, w := range h.workers {
		s.Workers = append(s.Workers, *w)
		if w.Straggler {
			s.Stragglers = append(s.Stragglers, w.ID)
		}
	}
	slices.SortFunc(s.Workers, func(a, b Worker) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	slices.Sort(s.Stragglers)
	s.Progress = h.progress()
	return s
}

// progress computes the progress figures (h.mu held).
func (h *Hub) progress() Progress {
	p := Progress{TotalSteps: h.info.TotalSteps, Epochs: h.info.Epochs}
	if n := len(h.steps); n > 0 {
		last := h.steps[n-1]
		p.Steps, p.Epoch = last.Step, last.Epoch
		if n >= 2 {
			first := h.steps[max(0, n-1-rateWindow)]
			dt := last.ElapsedSeconds - first.ElapsedSeconds
			if dt > 0 && last.Step > first.Step {
				sps := float64(last.Step-first.Step) / dt
				p.StepsPerSecond = &sps
				if h.info.Batch > 0 {
					v := sps * float64(h.info.Batch)
					p.SamplesPerSecond = &v
				} else if !math.IsNaN(last.SamplesPerSecond) {
					v := last.SamplesPerSecond
					p.SamplesPerSecond = &v
				}
				if p.TotalSteps > 0 && h.status == StatusRunning {
					eta := float64(max(p.TotalSteps-p.Steps, 0)) / sps
					p.ETASeconds = &eta
				}
			}
		}
	}
	if p.TotalSteps > 0 {
		p.Fraction = math.Min(1, float64(p.Steps)/float64(p.TotalSteps))
	}
	if h.status == StatusDone {
		p.Fraction = 1
		zero := 0.0
		p.ETASeconds = &zero
	}
	return p
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func appendCapped[T any](s []T, v T, limit int) []T {
	s = append(s, v)
	if len(s) > limit {
		s = slices.Delete(s, 0, len(s)-limit)
	}
	return s
}

// Handler serves the page at /, its assets under /assets/, and the state
// at /api/state (?since=N: only the steps after step N). Anything else is
// 404.
func (h *Hub) Handler() http.Handler {
	mux := http.NewServeMux()
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(static)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, static, "index.html")
	})
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", files))
	mux.HandleFunc("GET /api/state", func(w http.ResponseWriter, r *http.Request) {
		since := 0
		if v := r.URL.Query().Get("since"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				http.Error(w, "since: want a step number (0 or more), got "+strconv.Quote(v), http.StatusBadRequest)
				return
			}
			since = n
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		_ = enc.Encode(h.Snapshot(since))
	})
	return mux
}
