// Package metrics defines the Prometheus metrics of the ringtrain coordinator
// and workers and serves them over HTTP.
//
// Every metric is named ringtrain_<what>_<unit>, in base units (seconds,
// bytes), with _total for counters. Labels have small, fixed value sets
// (set, kind, result, reason) or are bounded by the cluster size (worker);
// no label carries a step number or any other unbounded value.
//
// The collectors live in the structs returned by NewCoordinator and NewWorker
// and are registered on the registerer passed in: there is no global
// registry. Every method is safe on a nil receiver, where it does nothing,
// so a caller whose metrics are disabled can keep a nil pointer and still
// report each event in one line.
package metrics

import (
	"errors"
	"math"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace is the prefix of every ringtrain metric.
const Namespace = "ringtrain"

// DurationBuckets returns the histogram buckets, in seconds, of every
// duration metric: from 1 ms to 60 s in 1-2.5-5 steps (a fresh slice).
func DurationBuckets() []float64 {
	return []float64{
		0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
		1, 2.5, 5, 10, 25, 60,
	}
}

// Membership change kinds, the values of the kind label of
// ringtrain_membership_changes_total.
const (
	KindJoin  = "join"
	KindLeave = "leave"
	KindFail  = "fail"
	KindOther = "other"
)

// Step abort reasons, the values of the reason label of
// ringtrain_step_aborts_total.
const (
	ReasonRPC       = "rpc"       // a Step RPC or ring transfer failed
	ReasonDeadline  = "deadline"  // the step deadline fired
	ReasonGossip    = "gossip"    // gossip reported a ring member gone
	ReasonNonFinite = "nonfinite" // a loss or gradient was NaN or infinite
	ReasonOther     = "other"     // anything else
)

// Kinds returns every value of the kind label, in a fresh slice.
func Kinds() []string { return []string{KindJoin, KindLeave, KindFail, KindOther} }

// Reasons returns every value of the reason label, in a fresh slice.
func Reasons() []string {
	return []string{ReasonRPC, ReasonDeadline, ReasonGossip, ReasonNonFinite, ReasonOther}
}

// oneOf returns v if it is in set, else fallback, so that a label never
// takes a value outside its fixed set.
func oneOf(v string, set []string, fallback string) string {
	for _, s := range set {
		if v == s {
			return v
		}
	}
	return fallback
}

// NewRegistry returns a registry holding the Go runtime and process
// collectors and ringtrain_build_info.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	RegisterBuildInfo(reg)
	return reg
}

// BuildInfo returns the labels of ringtrain_build_info: the main module's
// version, the Go version and the VCS revision ("unknown" when the binary
// was built without VCS stamping, as with -buildvcs=false, or when there is
// no build information, as in tests).
func BuildInfo() (version, goVersion, revision string) {
	version, goVersion, revision = "unknown", "unknown", "unknown"
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return version, goVersion, revision
	}
	if v := info.Main.Version; v != "" {
		version = v
	}
	if info.GoVersion != "" {
		goVersion = info.GoVersion
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			revision = s.Value
		}
	}
	return version, goVersion, revision
}

// RegisterBuildInfo registers the gauge ringtrain_build_info{version,
// goversion, revision} = 1 on reg. Registering it twice on the same registry
// is harmless; any other registration failure panics, as for MustRegister.
func RegisterBuildInfo(reg prometheus.Registerer) {
	version, goVersion, revision := BuildInfo()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "build_info",
		Help:      "Build information of the running ringtrain binary; the value is always 1.",
		ConstLabels: prometheus.Labels{
			"version": version, "goversion": goVersion, "revision": revision,
		},
	})
	g.Set(1)
	if err := reg.Register(g); err != nil {
		if _, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			return
		}
		panic(err)
	}
}

// register registers cs on reg, unless reg is nil.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) {
	if reg != nil {
		reg.MustRegister(cs...)
	}
}

// seconds converts d to seconds, clamping negative durations to zero.
func seconds(d time.Duration) float64 {
	return max(d, 0).Seconds()
}

// nan returns a quiet NaN, the value of a gauge that has no figure yet.
func nan() float64 { return math.NaN() }
