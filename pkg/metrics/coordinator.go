package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Coordinator holds the coordinator's collectors. Create it with
// NewCoordinator; a nil *Coordinator ignores every call.
type Coordinator struct {
	steps, samples        prometheus.Counter
	stepDuration          prometheus.Histogram
	stepLoss              prometheus.Gauge
	workerCompute         *prometheus.HistogramVec
	allreduceBytes        prometheus.Counter
	allreduceDuration     prometheus.Histogram
	epochs                prometheus.Counter
	epochLoss, epochAcc   *prometheus.GaugeVec
	worldSize, generation prometheus.Gauge
	membership            *prometheus.CounterVec
	checkpoints           *prometheus.CounterVec
	checkpointDuration    prometheus.Histogram
	checkpointLast        prometheus.Gauge
	aborts                *prometheus.CounterVec
	recoveries            prometheus.Counter
	recoveryDuration      prometheus.Histogram
	straggler             *prometheus.GaugeVec
	stragglerRatio        *prometheus.GaugeVec
	stragglersDetected    prometheus.Counter
}

// NewCoordinator creates the coordinator's metrics and registers them on reg
// (not registered if reg is nil). It panics if a metric of the same name is
// already registered there, as prometheus.MustRegister does: that is a
// programming error, not a run-time condition.
func NewCoordinator(reg prometheus.Registerer) *Coordinator {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
	}
	histogram := func(name, help string) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: name, Help: help, Buckets: DurationBuckets(),
		})
	}
	m := &Coordinator{
		steps:        counter("steps_total", "Training steps committed."),
		samples:      counter("samples_total", "Training samples in the committed steps."),
		stepDuration: histogram("step_duration_seconds", "Wall time of a committed step attempt, from sending the shards to the last commit."),
		stepLoss:     gauge("step_loss", "Mean training loss over the global batch of the last committed step."),
		workerCompute: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "step_compute_duration_seconds",
			Help:    "Time a worker spent on forward and backward before its all-reduce, as it reported it, by worker; stragglers show here.",
			Buckets: DurationBuckets(),
		}, []string{"worker"}),
		allreduceBytes:    counter("allreduce_bytes_total", "Bytes each worker sent to its ring neighbour in the all-reduces of committed steps."),
		allreduceDuration: histogram("allreduce_duration_seconds", "Time of the all-reduce of a committed step (the slowest worker's)."),
		epochs:            counter("epochs_total", "Training epochs completed."),
		epochLoss: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "epoch_loss",
			Help: "Mean loss at the end of the last epoch, by data set (NaN if not evaluated).",
		}, []string{"set"}),
		epochAcc: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "epoch_accuracy_ratio",
			Help: "Fraction of samples classified correctly at the end of the last epoch, by data set (NaN if not evaluated).",
		}, []string{"set"}),
		worldSize:  gauge("world_size", "Workers in the current ring."),
		generation: gauge("ring_generation", "Current ring generation; it grows whenever the ring is re-formed."),
		membership: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "membership_changes_total",
			Help: "Changes of the worker set, by kind (join, leave, fail, other).",
		}, []string{"kind"}),
		checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "checkpoints_total",
			Help: "Checkpoints attempted, by result (ok, error).",
		}, []string{"result"}),
		checkpointDuration: histogram("checkpoint_duration_seconds", "Time to write a checkpoint, successful or not."),
		checkpointLast:     gauge("last_checkpoint_success_timestamp_seconds", "Unix time of the last successful checkpoint."),
		aborts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "step_aborts_total",
			Help: "Step attempts aborted and retried, by reason (rpc, deadline, gossip, nonfinite, other).",
		}, []string{"reason"}),
		recoveries:       counter("recoveries_total", "Steps committed after one or more aborted attempts."),
		recoveryDuration: histogram("recovery_duration_seconds", "Time from a step's first aborted attempt to its commit."),
		straggler: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "worker_straggler",
			Help: "1 while the worker is named a straggler (its median compute time over the window is above the threshold over the others'), 0 when it is not, by worker.",
		}, []string{"worker"}),
		stragglerRatio: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "worker_straggler_ratio",
			Help: "A straggler's median compute time over the other workers' median, when it was named; 0 when it is not one, by worker.",
		}, []string{"worker"}),
		stragglersDetected: counter("stragglers_detected_total", "Times a worker was named a straggler."),
	}
	// Every label value of the fixed sets exists from the start, at zero, so
	// that rate() and alerts see the series before the first event.
	for _, set := range []string{"train", "test"} {
		m.epochLoss.WithLabelValues(set).Set(nan())
		m.epochAcc.WithLabelValues(set).Set(nan())
	}
	for _, k := range Kinds() {
		m.membership.WithLabelValues(k)
	}
	for _, r := range []string{"ok", "error"} {
		m.checkpoints.WithLabelValues(r)
	}
	for _, r := range Reasons() {
		m.aborts.WithLabelValues(r)
	}
	register(reg,
		m.steps, m.samples, m.stepDuration, m.stepLoss, m.workerCompute,
		m.allreduceBytes, m.allreduceDuration, m.epochs, m.epochLoss, m.epochAcc,
		m.worldSize, m.generation, m.membership, m.checkpoints, m.checkpointDuration,
		m.checkpointLast, m.aborts, m.recoveries, m.recoveryDuration,
		m.straggler, m.stragglerRatio, m.stragglersDetected,
	)
	return m
}

// StepDone records a committed step: its wall time d, its global batch size
// and the mean loss over that batch.
func (m *Coordinator) StepDone(d time.Duration, samples int, loss float64) {
	if m == nil {
		return
	}
	m.steps.Inc()
	m.samples.Add(float64(max(samples, 0)))
	m.stepDuration.Observe(seconds(d))
	m.stepLoss.Set(loss)
}

// WorkerCompute records the compute time (forward and backward, before the
// all-reduce) that worker reported for a step.
func (m *Coordinator) WorkerCompute(worker string, d time.Duration) {
	if m == nil {
		return
	}
	m.workerCompute.WithLabelValues(worker).Observe(seconds(d))
}

// ForgetWorker deletes worker's series. Call it when a worker leaves or is
// dropped for good: worker ids that include a random suffix would otherwise
// accumulate over a long run with churn.
func (m *Coordinator) ForgetWorker(worker string) {
	if m == nil {
		return
	}
	m.workerCompute.DeleteLabelValues(worker)
	m.straggler.DeleteLabelValues(worker)
	m.stragglerRatio.DeleteLabelValues(worker)
}

// Straggler records that worker became a straggler (on, with its compute
// time ratio over the others') or stopped being one.
func (m *Coordinator) Straggler(worker string, on bool, ratio float64) {
	if m == nil {
		return
	}
	if on {
		m.stragglersDetected.Inc()
		m.straggler.WithLabelValues(worker).Set(1)
		m.stragglerRatio.WithLabelValues(worker).Set(ratio)
		return
	}
	m.straggler.WithLabelValues(worker).Set(0)
	m.stragglerRatio.WithLabelValues(worker).Set(0)
}

// Allreduce records the all-reduce of a committed step: the bytes each
// worker sent (2(N-1)/N of the buffer) and its duration.
func (m *Coordinator) Allreduce(bytesPerWorker int64, d time.Duration) {
	if m == nil {
		return
	}
	m.allreduceBytes.Add(float64(max(bytesPerWorker, 0)))
	m.allreduceDuration.Observe(seconds(d))
}

// Epoch records the end of an epoch with its training and test figures
// (accuracies as fractions in [0, 1]; NaN for a set not evaluated).
func (m *Coordinator) Epoch(trainLoss, trainAcc, testLoss, testAcc float64) {
	if m == nil {
		return
	}
	m.epochs.Inc()
	m.epochLoss.WithLabelValues("train").Set(trainLoss)
	m.epochAcc.WithLabelValues("train").Set(trainAcc)
	m.epochLoss.WithLabelValues("test").Set(testLoss)
	m.epochAcc.WithLabelValues("test").Set(testAcc)
}

// WorldSize records the number of workers in the current ring.
func (m *Coordinator) WorldSize(n int) {
	if m == nil {
		return
	}
	m.worldSize.Set(float64(n))
}

// RingGeneration records the current ring generation.
func (m *Coordinator) RingGeneration(g uint64) {
	if m == nil {
		return
	}
	m.generation.Set(float64(g))
}

// MembershipChange counts a change of the worker set. kind is KindJoin,
// KindLeave or KindFail; any other value is counted as KindOther.
func (m *Coordinator) MembershipChange(kind string) {
	if m == nil {
		return
	}
	m.membership.WithLabelValues(oneOf(kind, Kinds(), KindOther)).Inc()
}

// Checkpoint records a checkpoint that took d and failed with err (nil for
// success).
func (m *Coordinator) Checkpoint(d time.Duration, err error) {
	if m == nil {
		return
	}
	m.checkpointDuration.Observe(seconds(d))
	if err != nil {
		m.checkpoints.WithLabelValues("error").Inc()
		return
	}
	m.checkpoints.WithLabelValues("ok").Inc()
	m.checkpointLast.SetToCurrentTime()
}

// Abort counts an aborted step attempt. reason is one of ReasonRPC,
// ReasonDeadline, ReasonGossip, ReasonNonFinite; any other value is counted
// as ReasonOther.
func (m *Coordinator) Abort(reason string) {
	if m == nil {
		return
	}
	m.aborts.WithLabelValues(oneOf(reason, Reasons(), ReasonOther)).Inc()
}

// Recovery records a step committed after aborted attempts; d runs from the
// first abort to the commit of the retried step.
func (m *Coordinator) Recovery(d time.Duration) {
	if m == nil {
		return
	}
	m.recoveries.Inc()
	m.recoveryDuration.Observe(seconds(d))
}
