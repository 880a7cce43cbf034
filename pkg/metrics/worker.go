package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Worker holds a worker's collectors. Create it with NewWorker; a nil
// *Worker ignores every call.
type Worker struct {
	steps              prometheus.Counter
	compute, allreduce prometheus.Histogram
	exposed            prometheus.Histogram
	sent, received     prometheus.Counter
	stateLoads         prometheus.Counter
	commits            *prometheus.CounterVec
}

// NewWorker creates a worker's metrics and registers them on reg (not
// registered if reg is nil); it panics on a name conflict, as
// prometheus.MustRegister does. Several workers in one process (the
// coordinator's --local-workers) share a registry by each passing
// prometheus.WrapRegistererWith(prometheus.Labels{"worker": id}, reg).
func NewWorker(reg prometheus.Registerer) *Worker {
	const sub = "worker"
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: sub, Name: name, Help: help})
	}
	histogram := func(name, help string) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: sub, Name: name, Help: help, Buckets: DurationBuckets(),
		})
	}
	m := &Worker{
		steps:      counter("steps_total", "Steps this worker computed and all-reduced (committed or not)."),
		compute:    histogram("compute_duration_seconds", "Time of forward and backward over this worker's shard."),
		allreduce:  histogram("allreduce_duration_seconds", "Time of this worker's all-reduce (reduce-scatter and all-gather), from its first bucket's start to its last bucket's end."),
		exposed:    histogram("allreduce_exposed_duration_seconds", "Part of the all-reduce not hidden behind backward: from the end of backward to the end of the last bucket."),
		sent:       counter("sent_bytes_total", "Bytes this worker sent to its right ring neighbour."),
		received:   counter("received_bytes_total", "Bytes this worker received from its left ring neighbour."),
		stateLoads: counter("state_loads_total", "Parameter and optimizer states loaded from the coordinator."),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: sub, Name: "commits_total",
			Help: "Held step updates resolved by the coordinator, by result (applied, discarded).",
		}, []string{"result"}),
	}
	m.commits.WithLabelValues("applied")
	m.commits.WithLabelValues("discarded")
	register(reg, m.steps, m.compute, m.allreduce, m.exposed, m.sent, m.received, m.stateLoads, m.commits)
	return m
}

// Step records a step this worker finished: its compute, all-reduce and
// exposed all-reduce times and the bytes it sent and received in the
// all-reduce.
func (m *Worker) Step(compute, allreduce, exposed time.Duration, bytesSent, bytesRecv int64) {
	if m == nil {
		return
	}
	m.steps.Inc()
	m.compute.Observe(seconds(compute))
	m.allreduce.Observe(seconds(allreduce))
	m.exposed.Observe(seconds(exposed))
	m.sent.Add(float64(max(bytesSent, 0)))
	m.received.Add(float64(max(bytesRecv, 0)))
}

// StateLoaded counts a state (parameters and optimizer) received and swapped
// in.
func (m *Worker) StateLoaded() {
	if m == nil {
		return
	}
	m.stateLoads.Inc()
}

// Commit counts a commit of the held update: applied, or discarded (the
// coordinator asked not to apply it).
func (m *Worker) Commit(applied bool) {
	if m == nil {
		return
	}
	if applied {
		m.commits.WithLabelValues("applied").Inc()
		return
	}
	m.commits.WithLabelValues("discarded").Inc()
}
