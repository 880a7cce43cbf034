package metrics

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// exerciseCoordinator calls every Coordinator method at least once.
func exerciseCoordinator(m *Coordinator) {
	m.StepDone(120*time.Millisecond, 64, 0.69)
	m.StepDone(80*time.Millisecond, 64, 0.5)
	m.WorkerCompute("w0", 50*time.Millisecond)
	m.WorkerCompute("w1", 70*time.Millisecond)
	m.Allreduce(7_100_000, 30*time.Millisecond)
	m.Epoch(0.3, 0.9, 0.35, 0.88)
	m.WorldSize(2)
	m.RingGeneration(3)
	m.MembershipChange(KindJoin)
	m.MembershipChange(KindFail)
	m.Checkpoint(2*time.Second, nil)
	m.Checkpoint(time.Second, errors.New("disk full"))
	m.Abort(ReasonDeadline)
	m.Recovery(1500 * time.Millisecond)
	m.Straggler("w1", true, 2.5)
}

// exerciseWorker calls every Worker method at least once.
func exerciseWorker(m *Worker) {
	m.Step(40*time.Millisecond, 20*time.Millisecond, 5*time.Millisecond, 3_550_000, 3_550_000)
	m.StateLoaded()
	m.Commit(true)
	m.Commit(false)
}

// allowedLabels are the label names a ringtrain metric may carry: each has a
// fixed value set or one bounded by the cluster size.
var allowedLabels = []string{"worker", "set", "kind", "result", "reason", "version", "goversion", "revision"}

// checkConventions checks the families named ringtrain_* in mfs against the
// naming rules: one prefix, _total on counters only, base units, bounded
// labels, and every family observed at least once.
func checkConventions(t *testing.T, mfs []*dto.MetricFamily) {
	t.Helper()
	for _, p := range conventionProblems(mfs) {
		t.Error(p)
	}
}

// conventionProblems returns what is wrong with the names, labels and values
// of the ringtrain_* families in mfs.
func conventionProblems(mfs []*dto.MetricFamily) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	badUnit := regexp.MustCompile(`_(milli|micro|nano)?(ms|us|ns|milliseconds|minutes?|hours?|kilobytes|megabytes|kb|mb|bits|percent)(_|$)`)
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, Namespace+"_") {
			continue
		}
		if strings.Count(name, Namespace) != 1 {
			bad("%s: the prefix %s_ appears more than once", name, Namespace)
		}
		if badUnit.MatchString(name) {
			bad("%s: not in base units (seconds, bytes, ratio)", name)
		}
		isCounter := mf.GetType() == dto.MetricType_COUNTER
		if isCounter != strings.HasSuffix(name, "_total") {
			bad("%s: type %v, but _total is for counters and only counters", name, mf.GetType())
		}
		if mf.GetType() == dto.MetricType_HISTOGRAM && !strings.HasSuffix(name, "_seconds") {
			bad("%s: histograms here measure durations and must end in _seconds", name)
		}
		if strings.Contains(name, "bytes") && !strings.HasSuffix(name, "_bytes_total") {
			bad("%s: byte counts are counters named *_bytes_total", name)
		}
		if mf.GetHelp() == "" {
			bad("%s: no help text", name)
		}
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if !slices.Contains(allowedLabels, lp.GetName()) {
					bad("%s: label %q is not one of the bounded labels %v", name, lp.GetName(), allowedLabels)
				}
			}
		}
		if !observed(mf) {
			bad("%s: no series was exercised", name)
		}
	}
	return problems
}

// TestConventionCheckCatchesBadNames makes sure the convention check is not
// vacuous: each of these metrics breaks one rule and must be reported.
func TestConventionCheckCatchesBadNames(t *testing.T) {
	tests := []struct {
		name string
		c    prometheus.Collector
		want string
	}{
		{"counter without _total", prometheus.NewCounter(prometheus.CounterOpts{Name: "ringtrain_steps", Help: "h"}), "only counters"},
		{"gauge with _total", prometheus.NewGauge(prometheus.GaugeOpts{Name: "ringtrain_steps_total", Help: "h"}), "only counters"},
		{"milliseconds", prometheus.NewGauge(prometheus.GaugeOpts{Name: "ringtrain_step_ms", Help: "h"}), "base units"},
		{"double prefix", prometheus.NewGauge(prometheus.GaugeOpts{Name: "ringtrain_ringtrain_x", Help: "h"}), "more than once"},
		{"histogram not in seconds", prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ringtrain_size", Help: "h"}), "_seconds"},
		{"bytes gauge", prometheus.NewGauge(prometheus.GaugeOpts{Name: "ringtrain_sent_bytes", Help: "h"}), "_bytes_total"},
		{"no help", prometheus.NewGauge(prometheus.GaugeOpts{Name: "ringtrain_x"}), "no help"},
		{"step label", prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ringtrain_x_total", Help: "h"}, []string{"step"}), "bounded labels"},
		{"never observed", prometheus.NewCounter(prometheus.CounterOpts{Name: "ringtrain_y_total", Help: "h"}), "exercised"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			reg.MustRegister(tt.c)
			if cv, ok := tt.c.(*prometheus.CounterVec); ok {
				cv.WithLabelValues("17").Inc()
			}
			if g, ok := tt.c.(prometheus.Gauge); ok {
				g.Set(1)
			}
			if h, ok := tt.c.(prometheus.Histogram); ok {
				h.Observe(1)
			}
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			problems := conventionProblems(mfs)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("problems %q: none mentions %q", problems, tt.want)
			}
		})
	}
}

// observed reports whether some series of mf holds a value other than zero
// (or NaN, the unset gauge), or a histogram with observations.
func observed(mf *dto.MetricFamily) bool {
	for _, mt := range mf.GetMetric() {
		var v float64
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			v = mt.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			v = mt.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			v = float64(mt.GetHistogram().GetSampleCount())
		}
		if v != 0 && !math.IsNaN(v) {
			return true
		}
	}
	return false
}

// ringtrainNames returns the sorted names of the ringtrain_* families.
func ringtrainNames(mfs []*dto.MetricFamily) []string {
	var names []string
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), Namespace+"_") {
			names = append(names, mf.GetName())
		}
	}
	slices.Sort(names)
	return names
}

func TestCoordinatorMetricsRegisteredExercisedAndLinted(t *testing.T) {
	reg := prometheus.NewRegistry()
	exerciseCoordinator(NewCoordinator(reg))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	want := []string{
		"ringtrain_allreduce_bytes_total",
		"ringtrain_allreduce_duration_seconds",
		"ringtrain_checkpoint_duration_seconds",
		"ringtrain_checkpoints_total",
		"ringtrain_epoch_accuracy_ratio",
		"ringtrain_epoch_loss",
		"ringtrain_epochs_total",
		"ringtrain_last_checkpoint_success_timestamp_seconds",
		"ringtrain_membership_changes_total",
		"ringtrain_recoveries_total",
		"ringtrain_recovery_duration_seconds",
		"ringtrain_ring_generation",
		"ringtrain_samples_total",
		"ringtrain_step_aborts_total",
		"ringtrain_step_compute_duration_seconds",
		"ringtrain_step_duration_seconds",
		"ringtrain_step_loss",
		"ringtrain_steps_total",
		"ringtrain_stragglers_detected_total",
		"ringtrain_worker_straggler",
		"ringtrain_worker_straggler_ratio",
		"ringtrain_world_size",
	}
	if got := ringtrainNames(mfs); !slices.Equal(got, want) {
		t.Errorf("registered families:\n got %v\nwant %v", got, want)
	}
	checkConventions(t, mfs)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestWorkerMetricsRegisteredExercisedAndLinted(t *testing.T) {
	reg := prometheus.NewRegistry()
	exerciseWorker(NewWorker(reg))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	want := []string{
		"ringtrain_worker_allreduce_duration_seconds",
		"ringtrain_worker_allreduce_exposed_duration_seconds",
		"ringtrain_worker_commits_total",
		"ringtrain_worker_compute_duration_seconds",
		"ringtrain_worker_received_bytes_total",
		"ringtrain_worker_sent_bytes_total",
		"ringtrain_worker_state_loads_total",
		"ringtrain_worker_steps_total",
	}
	if got := ringtrainNames(mfs); !slices.Equal(got, want) {
		t.Errorf("registered families:\n got %v\nwant %v", got, want)
	}
	checkConventions(t, mfs)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestOneProcessRegistry registers everything a coordinator with
// --local-workers 2 would on one registry: no name may clash, and the whole
// registry, Go and process collectors included, must lint clean.
func TestOneProcessRegistry(t *testing.T) {
	reg := NewRegistry()
	RegisterBuildInfo(reg) // a second time: harmless
	exerciseCoordinator(NewCoordinator(reg))
	for _, id := range []string{"w0", "w1"} {
		exerciseWorker(NewWorker(prometheus.WrapRegistererWith(prometheus.Labels{"worker": id}, reg)))
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	checkConventions(t, mfs)
	for _, prefix := range []string{"go_", "process_"} {
		if !slices.ContainsFunc(mfs, func(mf *dto.MetricFamily) bool { return strings.HasPrefix(mf.GetName(), prefix) }) {
			t.Errorf("no %s* metrics in NewRegistry", prefix)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "ringtrain_worker_steps_total"); err != nil || n != 2 {
		t.Errorf("ringtrain_worker_steps_total: %d series (err %v), want one per worker (2)", n, err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestCoordinatorValues(t *testing.T) {
	tests := []struct {
		name   string
		do     func(m *Coordinator)
		metric func(m *Coordinator) prometheus.Collector
		want   float64
	}{
		{"steps count", func(m *Coordinator) { m.StepDone(time.Millisecond, 64, 1); m.StepDone(time.Millisecond, 63, 2) },
			func(m *Coordinator) prometheus.Collector { return m.steps }, 2},
		{"samples add up", func(m *Coordinator) { m.StepDone(time.Millisecond, 64, 1); m.StepDone(time.Millisecond, 63, 2) },
			func(m *Coordinator) prometheus.Collector { return m.samples }, 127},
		{"loss is the last step's", func(m *Coordinator) { m.StepDone(time.Millisecond, 64, 1); m.StepDone(time.Millisecond, 63, 0.25) },
			func(m *Coordinator) prometheus.Collector { return m.stepLoss }, 0.25},
		{"negative sample count ignored", func(m *Coordinator) { m.StepDone(time.Millisecond, -5, 1) },
			func(m *Coordinator) prometheus.Collector { return m.samples }, 0},
		{"allreduce bytes add up", func(m *Coordinator) { m.Allreduce(100, time.Millisecond); m.Allreduce(50, time.Millisecond) },
			func(m *Coordinator) prometheus.Collector { return m.allreduceBytes }, 150},
		{"world size", func(m *Coordinator) { m.WorldSize(3); m.WorldSize(2) },
			func(m *Coordinator) prometheus.Collector { return m.worldSize }, 2},
		{"generation", func(m *Coordinator) { m.RingGeneration(7) },
			func(m *Coordinator) prometheus.Collector { return m.generation }, 7},
		{"test accuracy", func(m *Coordinator) { m.Epoch(0.1, 0.2, 0.3, 0.4) },
			func(m *Coordinator) prometheus.Collector { return m.epochAcc.WithLabelValues("test") }, 0.4},
		{"train loss", func(m *Coordinator) { m.Epoch(0.1, 0.2, 0.3, 0.4) },
			func(m *Coordinator) prometheus.Collector { return m.epochLoss.WithLabelValues("train") }, 0.1},
		{"known kind", func(m *Coordinator) { m.MembershipChange(KindLeave) },
			func(m *Coordinator) prometheus.Collector { return m.membership.WithLabelValues(KindLeave) }, 1},
		{"unknown kind is other", func(m *Coordinator) { m.MembershipChange("rejoin-42") },
			func(m *Coordinator) prometheus.Collector { return m.membership.WithLabelValues(KindOther) }, 1},
		{"known reason", func(m *Coordinator) { m.Abort(ReasonGossip); m.Abort(ReasonGossip) },
			func(m *Coordinator) prometheus.Collector { return m.aborts.WithLabelValues(ReasonGossip) }, 2},
		{"unknown reason is other", func(m *Coordinator) { m.Abort("step 17 exploded") },
			func(m *Coordinator) prometheus.Collector { return m.aborts.WithLabelValues(ReasonOther) }, 1},
		{"checkpoint ok", func(m *Coordinator) { m.Checkpoint(time.Second, nil) },
			func(m *Coordinator) prometheus.Collector { return m.checkpoints.WithLabelValues("ok") }, 1},
		{"checkpoint error", func(m *Coordinator) { m.Checkpoint(time.Second, errors.New("x")) },
			func(m *Coordinator) prometheus.Collector { return m.checkpoints.WithLabelValues("error") }, 1},
		{"failed checkpoint leaves the success time", func(m *Coordinator) { m.Checkpoint(time.Second, errors.New("x")) },
			func(m *Coordinator) prometheus.Collector { return m.checkpointLast }, 0},
		{"recoveries", func(m *Coordinator) { m.Recovery(time.Second) },
			func(m *Coordinator) prometheus.Collector { return m.recoveries }, 1},
		{"straggler named", func(m *Coordinator) { m.Straggler("w1", true, 3) },
			func(m *Coordinator) prometheus.Collector { return m.straggler.WithLabelValues("w1") }, 1},
		{"straggler ratio", func(m *Coordinator) { m.Straggler("w1", true, 3) },
			func(m *Coordinator) prometheus.Collector { return m.stragglerRatio.WithLabelValues("w1") }, 3},
		{"straggler cleared", func(m *Coordinator) { m.Straggler("w1", true, 3); m.Straggler("w1", false, 0) },
			func(m *Coordinator) prometheus.Collector { return m.straggler.WithLabelValues("w1") }, 0},
		{"stragglers counted when named", func(m *Coordinator) {
			m.Straggler("w1", true, 3)
			m.Straggler("w1", false, 0)
			m.Straggler("w2", true, 2)
		}, func(m *Coordinator) prometheus.Collector { return m.stragglersDetected }, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewCoordinator(prometheus.NewRegistry())
			tt.do(m)
			if got := testutil.ToFloat64(tt.metric(m)); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCoordinatorHistograms(t *testing.T) {
	m := NewCoordinator(nil) // unregistered: still usable
	m.StepDone(250*time.Millisecond, 64, 1)
	m.StepDone(-time.Second, 64, 1) // clock trouble must not yield a negative observation
	m.Recovery(90 * time.Second)    // beyond the last bucket: +Inf only
	for _, tt := range []struct {
		name      string
		h         prometheus.Histogram
		wantCount uint64
		wantSum   float64
		// cumulative count in the bucket with upper bound le
		le     float64
		wantLE uint64
	}{
		{"step", m.stepDuration, 2, 0.25, 0.25, 2},
		{"step below 1 ms", m.stepDuration, 2, 0.25, 0.001, 1},
		{"recovery beyond 60 s", m.recoveryDuration, 1, 90, 60, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var d dto.Metric
			if err := tt.h.Write(&d); err != nil {
				t.Fatal(err)
			}
			h := d.GetHistogram()
			if h.GetSampleCount() != tt.wantCount || math.Abs(h.GetSampleSum()-tt.wantSum) > 1e-9 {
				t.Errorf("count %d sum %v, want %d and %v", h.GetSampleCount(), h.GetSampleSum(), tt.wantCount, tt.wantSum)
			}
			found := false
			for _, b := range h.GetBucket() {
				if b.GetUpperBound() == tt.le {
					found = true
					if b.GetCumulativeCount() != tt.wantLE {
						t.Errorf("bucket le=%v holds %d, want %d", tt.le, b.GetCumulativeCount(), tt.wantLE)
					}
				}
			}
			if !found {
				t.Errorf("no bucket le=%v", tt.le)
			}
		})
	}
}

func TestDurationBucketsSpanMillisecondToMinute(t *testing.T) {
	b := DurationBuckets()
	if b[0] != 0.001 || b[len(b)-1] != 60 || !slices.IsSorted(b) {
		t.Errorf("buckets %v: want sorted, from 0.001 to 60", b)
	}
	b[0] = 42
	if DurationBuckets()[0] != 0.001 {
		t.Error("DurationBuckets shares its slice between calls")
	}
}

func TestForgetWorker(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewCoordinator(reg)
	m.WorkerCompute("w0", time.Millisecond)
	m.WorkerCompute("w1", time.Millisecond)
	m.Straggler("w0", true, 2)
	m.Straggler("w1", false, 0)
	m.ForgetWorker("w0")
	for _, name := range []string{"ringtrain_step_compute_duration_seconds", "ringtrain_worker_straggler", "ringtrain_worker_straggler_ratio"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Errorf("%s: %d series after forgetting one of two workers (err %v), want 1", name, n, err)
		}
	}
}

func TestWorkerValues(t *testing.T) {
	m := NewWorker(prometheus.NewRegistry())
	m.Step(time.Millisecond, time.Millisecond, time.Millisecond, 100, 90)
	m.Step(time.Millisecond, time.Millisecond, time.Millisecond, 100, 90)
	m.StateLoaded()
	m.Commit(true)
	m.Commit(true)
	m.Commit(false)
	for _, tt := range []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"steps", m.steps, 2},
		{"sent", m.sent, 200},
		{"received", m.received, 180},
		{"state loads", m.stateLoads, 1},
		{"applied", m.commits.WithLabelValues("applied"), 2},
		{"discarded", m.commits.WithLabelValues("discarded"), 1},
	} {
		if got := testutil.ToFloat64(tt.c); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestNilReceivers checks that disabled metrics (nil pointers) take every
// call without panicking.
func TestNilReceivers(t *testing.T) {
	var c *Coordinator
	exerciseCoordinator(c)
	c.ForgetWorker("w0")
	var w *Worker
	exerciseWorker(w)
}

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	RegisterBuildInfo(reg)
	RegisterBuildInfo(reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "ringtrain_build_info" || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("got %v, want one ringtrain_build_info series", mfs)
	}
	mt := mfs[0].GetMetric()[0]
	if mt.GetGauge().GetValue() != 1 {
		t.Errorf("value %v, want 1", mt.GetGauge().GetValue())
	}
	labels := map[string]string{}
	for _, lp := range mt.GetLabel() {
		labels[lp.GetName()] = lp.GetValue()
	}
	for _, name := range []string{"version", "goversion", "revision"} {
		if labels[name] == "" {
			t.Errorf("label %s is empty or missing: %v", name, labels)
		}
	}
	if !strings.HasPrefix(labels["goversion"], "go") {
		t.Errorf("goversion %q does not look like a Go version", labels["goversion"])
	}
}

// TestRegisterConflictPanics: a second coordinator on the same registry is a
// programming error and must not pass silently.
func TestRegisterConflictPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewCoordinator(reg)
	defer func() {
		if recover() == nil {
			t.Error("registering the coordinator metrics twice did not panic")
		}
	}()
	NewCoordinator(reg)
}
