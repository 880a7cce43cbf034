package dashboard

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/ringtrain/ringtrain/pkg/coordinator"
	"github.com/ringtrain/ringtrain/pkg/metrics"
	"github.com/ringtrain/ringtrain/pkg/straggler"
)

// Watch is the coordinator's observer: it feeds the dashboard and the
// straggler detector, and logs and exports the stragglers it names.
type Watch struct {
	hub     *Hub
	det     *straggler.Detector
	log     *slog.Logger
	metrics *metrics.Coordinator
}

// NewWatch returns the observer that feeds hub and a straggler detector
// of cfg, and logs (on log) and exports (on m; nil: none) every worker it
// names a straggler or clears.
func NewWatch(hub *Hub, cfg straggler.Config, log *slog.Logger, m *metrics.Coordinator) (*Watch, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	det, err := straggler.New(cfg)
	if err != nil {
		return nil, err
	}
	return &Watch{hub: hub, det: det, log: log, metrics: m}, nil
}

// ObserveStep implements coordinator.Observer.
func (w *Watch) ObserveStep(o coordinator.StepObservation) {
	w.hub.ObserveStep(o)
	compute := make(map[string]time.Duration, len(o.Workers))
	for _, ws := range o.Workers {
		compute[ws.ID] = ws.Compute
	}
	for _, c := range w.det.Observe(compute) {
		if c.Straggler {
			w.log.Warn("straggler: worker computes slower than the others", "worker", c.Worker, "step", o.Step+1,
				"compute_ms_median", ms3(c.Median), "others_compute_ms_median", ms3(c.Ring),
				"ratio", fmt.Sprintf("%.2f", c.Ratio), "window_steps", c.Window)
		} else {
			w.log.Info("straggler no more", "worker", c.Worker, "step", o.Step+1,
				"compute_ms_median", ms3(c.Median), "others_compute_ms_median", ms3(c.Ring))
		}
		w.metrics.Straggler(c.Worker, c.Straggler, c.Ratio)
		w.hub.Straggler(c)
	}
}

// ObserveEvent implements coordinator.Observer.
func (w *Watch) ObserveEvent(e coordinator.Event) { w.hub.ObserveEvent(e) }

// ms3 is d in milliseconds rounded to microseconds, for log lines.
func ms3(d time.Duration) float64 { return math.Round(ms(d)*1e3) / 1e3 }
