package coordcli

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/ringtrain/ringtrain/pkg/coordinator"
	"github.com/ringtrain/ringtrain/pkg/dashboard"
	"github.com/ringtrain/ringtrain/pkg/metrics"
	"github.com/ringtrain/ringtrain/pkg/straggler"
)

// DefaultMetricsAddr is the coordinator's default HTTP address (/metrics
// and the dashboard): loopback only, so nothing is exposed unasked. When
// the port is taken (another run, tests in parallel) and the flag was not
// given, the coordinator falls back to a port the kernel picks and says so.
const DefaultMetricsAddr = "127.0.0.1:8070"

// watch is the coordinator's observer: it feeds the dashboard and the
// straggler detector, and logs and exports the stragglers it names.
type watch struct {
	hub     *dashboard.Hub
	det     *straggler.Detector
	log     *slog.Logger
	metrics *metrics.Coordinator
}

func newWatch(hub *dashboard.Hub, cfg straggler.Config, log *slog.Logger, m *metrics.Coordinator) (*watch, error) {
	det, err := straggler.New(cfg)
	if err != nil {
		return nil, err
	}
	return &watch{hub: hub, det: det, log: log, metrics: m}, nil
}

// ObserveStep implements coordinator.Observer.
func (w *watch) ObserveStep(o coordinator.StepObservation) {
	w.hub.ObserveStep(o)
	compute := make(map[string]time.Duration, len(o.Workers))
	for _, ws := range o.Workers {
		compute[ws.ID] = ws.Compute
	}
	for _, c := range w.det.Observe(compute) {
		if c.Straggler {
			w.log.Warn("straggler: worker computes slower than the others", "worker", c.Worker, "step", o.Step+1,
				"compute_ms_median", ms(c.Median), "others_compute_ms_median", ms(c.Ring),
				"ratio", fmt.Sprintf("%.2f", c.Ratio), "window_steps", c.Window)
		} else {
			w.log.Info("straggler no more", "worker", c.Worker, "step", o.Step+1,
				"compute_ms_median", ms(c.Median), "others_compute_ms_median", ms(c.Ring))
		}
		w.metrics.Straggler(c.Worker, c.Straggler, c.Ratio)
		w.hub.Straggler(c)
	}
}

// ObserveEvent implements coordinator.Observer.
func (w *watch) ObserveEvent(e coordinator.Event) { w.hub.ObserveEvent(e) }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }

// addrInUse reports whether err is a listen failure because the port is taken.
func addrInUse(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.EADDRINUSE) || (errors.As(err, &op) && errors.Is(op.Err, syscall.EADDRINUSE))
}

// dashboardURL is the page's address for a bound listener address.
func dashboardURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String() + "/"
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}
