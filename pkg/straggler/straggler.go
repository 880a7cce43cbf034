// Package straggler names the worker that holds the ring back.
//
// The ring all-reduce makes every worker's step take the same wall time, so
// a slow worker is visible only in the time it spends computing before the
// collective. A Detector keeps each worker's compute time over a window of
// the most recent steps and flags a worker whose median compute time
// exceeds the median of the other workers' medians by more than a
// threshold (Ratio and Margin). Comparing with the others, not with a
// median that includes the worker itself, keeps a two-worker ring (the
// main job's) meaningful. It is pure: no clock, no I/O; the caller logs,
// exports and displays what Observe returns.
package straggler

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// Defaults of Config.
const (
	DefaultWindow = 20
	DefaultRatio  = 1.5
	DefaultMargin = 5 * time.Millisecond
)

// Config sets when a worker counts as a straggler.
type Config struct {
	// Window is how many of a worker's most recent steps are considered;
	// a worker is judged only once it has this many (0: DefaultWindow).
	Window int
	// Ratio: a worker is a straggler when its median compute time exceeds
	// Ratio times the median of the others' (0: DefaultRatio; must be > 1).
	Ratio float64
	// Margin is also required in absolute terms, so that jitter of a few
	// hundred microseconds on tiny steps is not called a straggler
	// (0: DefaultMargin; negative: none).
	Margin time.Duration
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Window < 0:
		return fmt.Errorf("straggler window must be 0 (default %d) or positive, got %d", DefaultWindow, c.Window)
	case c.Ratio != 0 && !(c.Ratio > 1):
		return fmt.Errorf("straggler ratio must be above 1, got %v", c.Ratio)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Ratio == 0 {
		c.Ratio = DefaultRatio
	}
	if c.Margin == 0 {
		c.Margin = DefaultMargin
	}
	if c.Margin < 0 {
		c.Margin = 0
	}
	return c
}

// Change is a worker that became a straggler (Straggler true) or stopped
// being one, with the figures of the decision.
type Change struct {
	Worker    string
	Straggler bool
	// Median is the worker's median compute time over the window; Ring is
	// the median of the other judged workers' medians; Ratio is
	// Median / Ring.
	Median, Ring time.Duration
	Ratio        float64
	Window       int
}

// Detector tracks the workers' compute times. The zero value is not
// usable; make one with New. It is not safe for concurrent use.
type Detector struct {
	cfg     Config
	times   map[string][]time.Duration // ring buffer per worker, newest last
	flagged map[string]bool
}

// New returns a Detector for cfg (see Config for the defaults).
func New(cfg Config) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Detector{cfg: cfg.withDefaults(), times: map[string][]time.Duration{}, flagged: map[string]bool{}}, nil
}

// Observe records one committed step's compute time per worker of the ring
// and returns the workers whose status changed, sorted by worker. Workers
// absent from compute (they left the ring) are forgotten; a forgotten
// straggler is reported as no longer one. With fewer than two judged
// workers there is nothing to compare and nobody is flagged.
func (d *Detector) Observe(compute map[string]time.Duration) []Change {
	for id := range d.times {
		if _, ok := compute[id]; !ok {
			delete(d.times, id)
		}
	}
	var changes []Change
	for id := range d.flagged {
		if _, ok := compute[id]; !ok {
			delete(d.flagged, id)
			changes = append(changes, Change{Worker: id, Window: d.cfg.Window})
		}
	}
	for id, t := range compute {
		w := append(d.times[id], t)
		if len(w) > d.cfg.Window {
			w = w[len(w)-d.cfg.Window:]
		}
		d.times[id] = w
	}
	medians := map[string]time.Duration{}
	for id, w := range d.times {
		if len(w) == d.cfg.Window {
			medians[id] = median(w)
		}
	}
	if len(medians) >= 2 {
		for id, m := range medians {
			others := make([]time.Duration, 0, len(medians)-1)
			for o, om := range medians {
				if o != id {
					others = append(others, om)
				}
			}
			ring := median(others)
			slow := float64(m) > d.cfg.Ratio*float64(ring) && m-ring > d.cfg.Margin
			if slow != d.flagged[id] {
				if slow {
					d.flagged[id] = true
				} else {
					delete(d.flagged, id)
				}
				ratio := 0.0
				if ring > 0 {
					ratio = float64(m) / float64(ring)
				}
				changes = append(changes, Change{Worker: id, Straggler: slow, Median: m, Ring: ring, Ratio: ratio, Window: d.cfg.Window})
			}
		}
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Worker < changes[j].Worker })
	return changes
}

// Stragglers returns the workers flagged now, sorted.
func (d *Detector) Stragglers() []string {
	out := make([]string, 0, len(d.flagged))
	for id := range d.flagged {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// median of ds (not modified); the mean of the middle two for an even count.
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
