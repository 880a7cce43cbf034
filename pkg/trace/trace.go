// Package trace records spans of a training run and writes them in the
// Chrome trace event format ({"traceEvents": [...]}), which chrome://tracing
// and Perfetto (ui.perfetto.dev) load.
//
// Every span lies on a named track (the coordinator, or one worker); tracks
// become threads of one process, named with metadata events and ordered as
// they first appear. Times are written in microseconds from the earliest
// event, so every ts is non-negative.
//
// A Recorder keeps at most a fixed number of events; events beyond it are
// dropped and counted, so a long run cannot exhaust memory. All methods are
// safe for concurrent use, and on a nil *Recorder Span, Instant and Step do
// nothing, so a caller whose tracing is off can keep a nil pointer.
package trace

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ringtrain/ringtrain/pkg/atomicfile"
	"io"
	"sync"
	"time"
)

// DefaultMaxEvents is the event bound NewRecorder uses when given zero or
// less. A step span takes about 100 bytes (spans with args more), so this
// is of the order of 100 MB, some 170,000 steps at 3 workers.
const DefaultMaxEvents = 1 << 20

// Span names of a step, as Step and StepPhases lay it out.
const (
	NameCompute       = "compute"        // forward and backward over the shard
	NameAllreduce     = "allreduce"      // the whole ring all-reduce
	NameReduceScatter = "reduce-scatter" // its first N-1 rounds
	NameAllGather     = "all-gather"     // its last N-1 rounds
	NameWait          = "wait"           // update held, waiting for the commit
	NameCommit        = "commit"         // applying the update
)

// Span categories ("cat"), which trace viewers can filter on.
const (
	CatCompute = "compute" // model math
	CatRing    = "ring"    // all-reduce communication
	CatWait    = "wait"    // idle: stragglers and coordination
	CatControl = "control" // coordinator work: commits, state loads, aborts
)

// pid is the process id of every event: the whole run is one "process" whose
// threads are the tracks.
const pid = 1

// event is one recorded event, before it is given a track id and a time
// origin.
type event struct {
	track    int // index in Recorder.tracks
	name     string
	cat      string
	ph       byte // 'X' complete or 'i' instant
	start    time.Time
	duration time.Duration
	args     map[string]any
	step     uint64 // written as args.step if hasStep: no map per step span
	hasStep  bool
	ring     bool // on the track's ring track (RingTrack), not the track itself
}

// RingTrack names the track that carries a worker's all-reduce when it
// overlaps the worker's compute (bucketed all-reduce): spans on one track
// must nest, and these two overlap.
func RingTrack(worker string) string { return worker + " ring" }

// Recorder collects trace events. Create it with NewRecorder.
type Recorder struct {
	mu      sync.Mutex
	max     int
	events  []event
	dropped int64
	tracks  []string       // track names in order of first appearance
	trackID map[string]int // name -> index in tracks
}

// NewRecorder returns a Recorder that keeps at most maxEvents events
// (DefaultMaxEvents if maxEvents <= 0).
func NewRecorder(maxEvents int) *Recorder {
	if maxEvents <= 0 {
		maxEvents = DefaultMaxEvents
	}
	return &Recorder{max: maxEvents, trackID: map[string]int{}}
}

// Span records a complete event: name in category on track, from start for
// d (a negative d is recorded as zero). args, if any, appear in the viewer's
// detail pane; they are copied, and must be JSON-encodable (a value that is
// not is replaced by its error at write time).
func (r *Recorder) Span(track, name, category string, start time.Time, d time.Duration, args map[string]any) {
	if r == nil {
		return
	}
	r.add(track, event{name: name, cat: category, ph: 'X', start: start, duration: max(d, 0), args: copyArgs(args)})
}

// Instant records an event without duration (an abort, a membership change)
// at time at on track.
func (r *Recorder) Instant(track, name, category string, at time.Time, args map[string]any) {
	if r == nil {
		return
	}
	r.add(track, event{name: name, cat: category, ph: 'i', start: at, args: copyArgs(args)})
}

// Phases are the parts of one worker's step, as the coordinator knows them
// from the worker's report and its own clock. Zero parts are left out.
type Phases struct {
	// Compute is the forward and backward pass, from the step's start.
	Compute time.Duration
	// Allreduce is the whole all-reduce, after Compute. If it is zero, it
	// is ReduceScatter + AllGather.
	Allreduce time.Duration
	// ReduceScatter and AllGather, if known, are drawn inside Allreduce,
	// one after the other from its start.
	ReduceScatter, AllGather time.Duration
	// Wait is the time from the end of the all-reduce until the commit
	// reached the worker: the update is held while the coordinator waits
	// for the slowest ring member.
	Wait time.Duration
	// Commit is the commit itself, after Wait.
	Commit time.Duration
	// Exposed, when the all-reduce overlapped compute (buckets all-reduced
	// during backward: 0 < Exposed < Allreduce), is the part of the
	// all-reduce after Compute: the all-reduce began Allreduce-Exposed
	// before Compute ended, and is drawn on the worker's RingTrack.
	Exposed time.Duration
}

// Step lays out one worker's step on the worker's track: compute from start,
// then the all-reduce. Every span carries the step number.
func (r *Recorder) Step(step uint64, start time.Time, worker string, compute, allreduce time.Duration) {
	r.StepPhases(step, start, worker, Phases{Compute: compute, Allreduce: allreduce})
}

// StepPhases lays out one worker's step on the worker's track from start:
// compute, the all-reduce (with its reduce-scatter and all-gather nested
// inside, when given), the wait for the commit and the commit, one after the
// other. The step is recorded whole or, if the Recorder is full, not at all.
func (r *Recorder) StepPhases(step uint64, start time.Time, worker string, p Phases) {
	if r == nil {
		return
	}
	allreduce := p.Allreduce
	if allreduce <= 0 {
		allreduce = max(p.ReduceScatter, 0) + max(p.AllGather, 0)
	}
	var evs []event
	at := start
	span := func(name, cat string, from time.Time, d time.Duration) {
		if d > 0 {
			evs = append(evs, event{name: name, cat: cat, ph: 'X', start: from, duration: d, step: step, hasStep: true})
		}
	}
	span(NameCompute, CatCompute, at, p.Compute)
	at = at.Add(max(p.Compute, 0))
	if p.Exposed > 0 && p.Exposed < allreduce {
		// Overlapped: the all-reduce on the ring track, from before the
		// end of compute.
		from := at.Add(p.Exposed - allreduce)
		evs = append(evs, event{name: NameAllreduce, cat: CatRing, ph: 'X', start: from, duration: allreduce, step: step, hasStep: true, ring: true})
		at = at.Add(p.Exposed)
	} else {
		span(NameAllreduce, CatRing, at, allreduce)
		span(NameReduceScatter, CatRing, at, p.ReduceScatter)
		span(NameAllGather, CatRing, at.Add(max(p.ReduceScatter, 0)), p.AllGather)
		at = at.Add(allreduce)
	}
	span(NameWait, CatWait, at, p.Wait)
	at = at.Add(max(p.Wait, 0))
	span(NameCommit, CatControl, at, p.Commit)
	r.add(worker, evs...)
}

// add records evs on track, all or none: if the Recorder has no room for
// them all, they are counted as dropped.
func (r *Recorder) add(track string, evs ...event) {
	if len(evs) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events)+len(evs) > r.max {
		r.dropped += int64(len(evs))
		return
	}
	trackID := func(name string) int {
		id, ok := r.trackID[name]
		if !ok {
			id = len(r.tracks)
			r.tracks = append(r.tracks, name)
			r.trackID[name] = id
		}
		return id
	}
	id := trackID(track)
	if need := len(r.events) + len(evs); need > cap(r.events) {
		// Grow by doubling, but never past the bound.
		grown := make([]event, len(r.events), min(r.max, max(2*cap(r.events), need, 64)))
		copy(grown, r.events)
		r.events = grown
	}
	for _, e := range evs {
		e.track = id
		if e.ring {
			e.track = trackID(RingTrack(track))
		}
		r.events = append(r.events, e)
	}
}

// Len returns the number of events recorded (metadata not included).
func (r *Recorder) Len() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// Dropped returns the number of events refused because the Recorder was
// full.
func (r *Recorder) Dropped() int64 {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

// copyArgs returns a shallow copy of args, nil for none.
func copyArgs(args map[string]any) map[string]any {
	if len(args) == 0 {
		return nil
	}
	c := make(map[string]any, len(args))
	for k, v := range args {
		c[k] = v
	}
	return c
}

// File is the JSON object written by WriteTo: the Trace Event Format's
// object form.
type File struct {
	TraceEvents     []Event        `json:"traceEvents"`
	DisplayTimeUnit string         `json:"displayTimeUnit,omitempty"`
	OtherData       map[string]any `json:"otherData,omitempty"`
}

// Event is one trace event as written.
type Event struct {
	Name  string         `json:"name"`
	Cat   string         `json:"cat,omitempty"`
	Ph    string         `json:"ph"`
	Ts    float64        `json:"ts"`            // microseconds from the earliest event
	Dur   *float64       `json:"dur,omitempty"` // microseconds; complete events only
	Pid   int            `json:"pid"`
	Tid   int            `json:"tid"`
	Scope string         `json:"s,omitempty"` // instant events: "t", the thread
	Args  map[string]any `json:"args,omitempty"`
}

// micros converts d to microseconds, keeping nanosecond precision.
func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// WriteTo writes the events recorded so far as one JSON trace to w. It may
// be called again later (at every epoch, say): each call writes everything
// recorded up to then. It returns the bytes written.
func (r *Recorder) WriteTo(w io.Writer) (int64, error) {
	if r == nil {
		return 0, errors.New("writing trace: tracing is off (nil Recorder)")
	}
	r.mu.Lock()
	evs := r.events[:len(r.events):len(r.events)] // recorded events are never changed
	tracks := append([]string(nil), r.tracks...)
	dropped := r.dropped
	r.mu.Unlock()

	var origin time.Time
	for i, e := range evs {
		if i == 0 || e.start.Before(origin) {
			origin = e.start
		}
	}
	cw := &countingWriter{w: bufio.NewWriter(w)}
	enc := func(e Event) error {
		b, err := json.Marshal(e)
		if err != nil {
			// Only args can fail (a NaN, a channel): keep the event.
			e.Args = map[string]any{"args_error": err.Error()}
			if b, err = json.Marshal(e); err != nil {
				return fmt.Errorf("encoding trace event %q: %w", e.Name, err)
			}
		}
		_, err = cw.Write(b)
		return err
	}
	other := map[string]any{"dropped_events": dropped, "max_events": r.max}
	otherJSON, err := json.Marshal(other)
	if err != nil {
		return cw.n, fmt.Errorf("encoding trace header: %w", err)
	}
	if _, err := fmt.Fprintf(cw, `{"displayTimeUnit":"ms","otherData":%s,"traceEvents":[`+"\n", otherJSON); err != nil {
		return cw.n, fmt.Errorf("writing trace: %w", err)
	}
	first := true
	write := func(e Event) error {
		if !first {
			if _, err := cw.Write([]byte(",\n")); err != nil {
				return err
			}
		}
		first = false
		return enc(e)
	}
	meta := []Event{{Name: "process_name", Ph: "M", Pid: pid, Args: map[string]any{"name": "ringtrain"}}}
	for i, name := range tracks {
		meta = append(meta,
			Event{Name: "thread_name", Ph: "M", Pid: pid, Tid: i + 1, Args: map[string]any{"name": name}},
			Event{Name: "thread_sort_index", Ph: "M", Pid: pid, Tid: i + 1, Args: map[string]any{"sort_index": i}},
		)
	}
	for _, e := range meta {
		if err := write(e); err != nil {
			return cw.n, fmt.Errorf("writing trace metadata: %w", err)
		}
	}
	for _, e := range evs {
		out := Event{
			Name: e.name, Cat: e.cat, Ph: string(e.ph), Ts: micros(e.start.Sub(origin)),
			Pid: pid, Tid: e.track + 1, Args: e.args,
		}
		if e.hasStep {
			out.Args = map[string]any{"step": e.step}
			for k, v := range e.args {
				out.Args[k] = v
			}
		}
		if e.ph == 'X' {
			d := micros(e.duration)
			out.Dur = &d
		} else {
			out.Scope = "t"
		}
		if err := write(out); err != nil {
			return cw.n, fmt.Errorf("writing trace event %q: %w", e.name, err)
		}
	}
	if _, err := cw.Write([]byte("\n]}\n")); err != nil {
		return cw.n, fmt.Errorf("writing trace: %w", err)
	}
	if err := cw.w.Flush(); err != nil {
		return cw.n, fmt.Errorf("writing trace: %w", err)
	}
	return cw.n, nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w *bufio.Writer
	n int64
}

// Write writes p and counts it.
func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// WriteFile writes the trace to path atomically (pkg/atomicfile), so a
// reader never sees a partial trace.
func (r *Recorder) WriteFile(path string) error {
	if r == nil {
		return errors.New("writing trace: tracing is off (nil Recorder)")
	}
	if err := atomicfile.Write(path, func(w io.Writer) error { _, err := r.WriteTo(w); return err }); err != nil {
		return fmt.Errorf("writing trace: %w", err)
	}
	return nil
}
