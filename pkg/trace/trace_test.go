package trace

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// decode parses a written trace strictly: unknown fields are errors.
func decode(t *testing.T, b []byte) File {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("decoding the trace: %v\n%s", err, b)
	}
	return f
}

// write returns r's trace, decoded and checked against the format.
func write(t *testing.T, r *Recorder) File {
	t.Helper()
	var buf bytes.Buffer
	n, err := r.WriteTo(&buf)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("WriteTo returned %d bytes, wrote %d", n, buf.Len())
	}
	f := decode(t, buf.Bytes())
	checkFormat(t, f)
	return f
}

// checkFormat checks the rules of the Trace Event Format that viewers rely
// on: known phases, non-negative times, a duration on every complete event,
// and a named thread for every tid in use.
func checkFormat(t *testing.T, f File) {
	t.Helper()
	threadNames := map[int]string{}
	processNamed := false
	for _, e := range f.TraceEvents {
		if e.Ph != "M" {
			continue
		}
		switch e.Name {
		case "thread_name":
			name, _ := e.Args["name"].(string)
			if name == "" {
				t.Errorf("thread_name for tid %d has no name: %v", e.Tid, e.Args)
			}
			threadNames[e.Tid] = name
		case "process_name":
			processNamed = true
		case "thread_sort_index":
		default:
			t.Errorf("unexpected metadata event %q", e.Name)
		}
	}
	if !processNamed {
		t.Error("no process_name metadata")
	}
	for _, e := range f.TraceEvents {
		switch e.Ph {
		case "M":
			continue
		case "X":
			if e.Dur == nil || *e.Dur < 0 {
				t.Errorf("complete event %q: dur %v, want >= 0", e.Name, e.Dur)
			}
		case "i":
			if e.Scope != "t" {
				t.Errorf("instant event %q: scope %q, want t", e.Name, e.Scope)
			}
		default:
			t.Errorf("event %q: unknown phase %q", e.Name, e.Ph)
		}
		if e.Ts < 0 || math.IsNaN(e.Ts) {
			t.Errorf("event %q: ts %v, want >= 0", e.Name, e.Ts)
		}
		if e.Name == "" || e.Pid != pid {
			t.Errorf("event %+v: want a name and pid %d", e, pid)
		}
		if _, ok := threadNames[e.Tid]; !ok {
			t.Errorf("event %q on tid %d, which has no thread_name", e.Name, e.Tid)
		}
	}
}

// span is an event reduced to what the layout tests compare.
type span struct {
	track, name, cat string
	ts, dur          float64 // microseconds
}

// spans returns f's complete and instant events with their track names.
func spans(f File) []span {
	names := map[int]string{}
	for _, e := range f.TraceEvents {
		if e.Ph == "M" && e.Name == "thread_name" {
			names[e.Tid] = e.Args["name"].(string)
		}
	}
	var out []span
	for _, e := range f.TraceEvents {
		if e.Ph == "M" {
			continue
		}
		s := span{track: names[e.Tid], name: e.Name, cat: e.Cat, ts: e.Ts}
		if e.Dur != nil {
			s.dur = *e.Dur
		}
		out = append(out, s)
	}
	return out
}

func TestStepLayout(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ms := time.Millisecond
	tests := []struct {
		name string
		rec  func(r *Recorder)
		want []span
	}{
		{
			name: "compute then allreduce",
			rec:  func(r *Recorder) { r.Step(7, t0, "w0", 10*ms, 5*ms) },
			want: []span{
				{"w0", NameCompute, CatCompute, 0, 10000},
				{"w0", NameAllreduce, CatRing, 10000, 5000},
			},
		},
		{
			name: "ring phases nest inside the allreduce, then wait and commit",
			rec: func(r *Recorder) {
				r.StepPhases(7, t0, "w1", Phases{Compute: 10 * ms, ReduceScatter: 3 * ms, AllGather: 2 * ms, Wait: 4 * ms, Commit: time.Microsecond})
			},
			want: []span{
				{"w1", NameCompute, CatCompute, 0, 10000},
				{"w1", NameAllreduce, CatRing, 10000, 5000},
				{"w1", NameReduceScatter, CatRing, 10000, 3000},
				{"w1", NameAllGather, CatRing, 13000, 2000},
				{"w1", NameWait, CatWait, 15000, 4000},
				{"w1", NameCommit, CatControl, 19000, 1},
			},
		},
		{
			name: "an all-reduce that overlapped backward goes on the ring track, from before compute ended",
			rec: func(r *Recorder) {
				r.StepPhases(3, t0, "w0", Phases{Compute: 10 * ms, Allreduce: 6 * ms, Exposed: 2 * ms, Wait: ms})
			},
			want: []span{
				{"w0", NameCompute, CatCompute, 0, 10000},
				{"w0 ring", NameAllreduce, CatRing, 6000, 6000},
				{"w0", NameWait, CatWait, 12000, 1000},
			},
		},
		{
			name: "zero parts are left out",
			rec:  func(r *Recorder) { r.Step(1, t0, "w0", 0, 5*ms) },
			want: []span{{"w0", NameAllreduce, CatRing, 0, 5000}},
		},
		{
			name: "two workers, the later start offset by the gap",
			rec: func(r *Recorder) {
				r.Step(1, t0.Add(2*ms), "w1", ms, ms)
				r.Step(1, t0, "w0", 1500*time.Microsecond, ms)
			},
			want: []span{
				{"w1", NameCompute, CatCompute, 2000, 1000},
				{"w1", NameAllreduce, CatRing, 3000, 1000},
				{"w0", NameCompute, CatCompute, 0, 1500},
				{"w0", NameAllreduce, CatRing, 1500, 1000},
			},
		},
		{
			name: "spans and instants on the coordinator track",
			rec: func(r *Recorder) {
				r.Span("coordinator", NameCommit, CatControl, t0.Add(ms), 2*ms, nil)
				r.Instant("coordinator", "abort", CatControl, t0, map[string]any{"reason": "deadline"})
				r.Span("coordinator", "negative", CatControl, t0, -ms, nil)
			},
			want: []span{
				{"coordinator", NameCommit, CatControl, 1000, 2000},
				{"coordinator", "abort", CatControl, 0, 0},
				{"coordinator", "negative", CatControl, 0, 0},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRecorder(100)
			tt.rec(r)
			got := spans(write(t, r))
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("spans:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestArgs(t *testing.T) {
	r := NewRecorder(10)
	t0 := time.Now()
	args := map[string]any{"generation": 3, "workers": []string{"w0", "w1"}}
	r.Span("coordinator", "step", CatControl, t0, time.Millisecond, args)
	args["generation"] = 4 // the recorder keeps its own copy
	r.Span("coordinator", "bad", CatControl, t0, time.Millisecond, map[string]any{"loss": math.NaN()})
	r.Step(42, t0, "w0", time.Millisecond, 0)
	f := write(t, r)
	byName := map[string]Event{}
	for _, e := range f.TraceEvents {
		byName[e.Name] = e
	}
	if g := byName["step"].Args["generation"]; g != float64(3) {
		t.Errorf("step args generation = %v, want 3", g)
	}
	if msg, _ := byName["bad"].Args["args_error"].(string); !strings.Contains(msg, "NaN") {
		t.Errorf("unencodable args: %v, want an args_error naming the NaN", byName["bad"].Args)
	}
	if s := byName[NameCompute].Args["step"]; s != float64(42) {
		t.Errorf("compute args step = %v, want 42", s)
	}
}

func TestTracksNamedInOrderOfAppearance(t *testing.T) {
	r := NewRecorder(100)
	t0 := time.Now()
	for _, track := range []string{"coordinator", "w1", "w0", "w1", "coordinator"} {
		r.Span(track, "x", CatControl, t0, time.Millisecond, nil)
	}
	f := write(t, r)
	var names []string
	sortIndex := map[int]float64{}
	for _, e := range f.TraceEvents {
		switch {
		case e.Ph == "M" && e.Name == "thread_name":
			names = append(names, e.Args["name"].(string))
		case e.Ph == "M" && e.Name == "thread_sort_index":
			sortIndex[e.Tid] = e.Args["sort_index"].(float64)
		}
	}
	if got, want := strings.Join(names, ","), "coordinator,w1,w0"; got != want {
		t.Errorf("tracks %s, want %s", got, want)
	}
	if sortIndex[1] >= sortIndex[2] || sortIndex[2] >= sortIndex[3] {
		t.Errorf("sort indexes %v do not follow the order of appearance", sortIndex)
	}
}

func TestBoundedEvents(t *testing.T) {
	t0 := time.Now()
	tests := []struct {
		name        string
		max         int
		rec         func(r *Recorder)
		wantLen     int
		wantDropped int64
	}{
		{"under the bound", 10, func(r *Recorder) {
			for range 4 {
				r.Span("c", "x", CatControl, t0, time.Millisecond, nil)
			}
		}, 4, 0},
		{"beyond the bound", 10, func(r *Recorder) {
			for range 25 {
				r.Span("c", "x", CatControl, t0, time.Millisecond, nil)
			}
		}, 10, 15},
		{"a step that does not fit is dropped whole", 5, func(r *Recorder) {
			r.Step(1, t0, "w0", time.Millisecond, time.Millisecond)                                  // 2 events
			r.Step(2, t0, "w0", time.Millisecond, time.Millisecond)                                  // 4
			r.StepPhases(3, t0, "w0", Phases{Compute: 1, ReduceScatter: 1, AllGather: 1, Commit: 1}) // 5 more: no room
			r.Instant("c", "abort", CatControl, t0, nil)                                             // the last slot
		}, 5, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRecorder(tt.max)
			tt.rec(r)
			if r.Len() != tt.wantLen || r.Dropped() != tt.wantDropped {
				t.Errorf("Len %d Dropped %d, want %d and %d", r.Len(), r.Dropped(), tt.wantLen, tt.wantDropped)
			}
			if cap(r.events) > tt.max {
				t.Errorf("event storage has room for %d events, beyond the bound %d", cap(r.events), tt.max)
			}
			f := write(t, r)
			if got := len(spans(f)); got != tt.wantLen {
				t.Errorf("wrote %d events, want %d", got, tt.wantLen)
			}
			if got := f.OtherData["dropped_events"]; got != float64(tt.wantDropped) {
				t.Errorf("otherData.dropped_events = %v, want %d", got, tt.wantDropped)
			}
		})
	}
	if r := NewRecorder(0); r.max != DefaultMaxEvents {
		t.Errorf("NewRecorder(0) keeps %d events, want DefaultMaxEvents", r.max)
	}
}

// TestMemoryPerEvent bounds what a step span costs, the basis of the
// DefaultMaxEvents sizing, and checks that a full Recorder stops growing.
func TestMemoryPerEvent(t *testing.T) {
	const steps = 20_000 // 2 events each
	t0 := time.Now()
	r := NewRecorder(2 * steps)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range steps {
		r.Step(uint64(i), t0, "w0", time.Millisecond, time.Millisecond)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perEvent := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(2*steps)
	t.Logf("%.0f bytes per step event", perEvent)
	if perEvent > 200 {
		t.Errorf("%.0f bytes per recorded step event, want at most 200", perEvent)
	}
	// Full now: many more steps must not grow the heap by more than noise.
	for i := range 10 * steps {
		r.Step(uint64(i), t0, "w0", time.Millisecond, time.Millisecond)
	}
	runtime.GC()
	var full runtime.MemStats
	runtime.ReadMemStats(&full)
	if grew := int64(full.HeapAlloc) - int64(after.HeapAlloc); grew > 1<<20 {
		t.Errorf("the heap grew by %d bytes while the Recorder was full", grew)
	}
	if r.Dropped() != 20*steps {
		t.Errorf("dropped %d, want %d", r.Dropped(), 20*steps)
	}
	runtime.KeepAlive(r)
}

func TestConcurrentUse(t *testing.T) {
	const (
		goroutines = 8
		each       = 500
		bound      = goroutines * each // the bound is reached mid-way
	)
	r := NewRecorder(bound)
	t0 := time.Now()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			track := fmt.Sprintf("w%d", g)
			for i := range each {
				r.Step(uint64(i), t0.Add(time.Duration(i)*time.Millisecond), track, time.Millisecond, time.Millisecond)
				r.Span("coordinator", NameCommit, CatControl, t0, time.Microsecond, map[string]any{"worker": track})
			}
		})
	}
	// Writers run while spans are being recorded.
	for range 2 {
		wg.Go(func() {
			for range 5 {
				var buf bytes.Buffer
				if _, err := r.WriteTo(&buf); err != nil {
					t.Errorf("WriteTo: %v", err)
					return
				}
				if !json.Valid(buf.Bytes()) {
					t.Error("WriteTo during recording wrote invalid JSON")
					return
				}
			}
		})
	}
	wg.Wait()
	total := int64(goroutines * each * 3)
	if int64(r.Len())+r.Dropped() != total || r.Len() > bound {
		t.Errorf("Len %d + Dropped %d, want %d in all and Len <= %d", r.Len(), r.Dropped(), total, bound)
	}
	f := write(t, r)
	if got := len(spans(f)); got != r.Len() {
		t.Errorf("wrote %d events, recorded %d", got, r.Len())
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "trace.json")
	r := NewRecorder(100)
	t0 := time.Now()
	r.Step(0, t0, "w0", time.Millisecond, time.Millisecond)
	if err := r.WriteFile(path); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	r.Step(1, t0.Add(3*time.Millisecond), "w0", time.Millisecond, time.Millisecond)
	if err := r.WriteFile(path); err != nil { // over the first
		t.Fatalf("WriteFile again: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := decode(t, b)
	checkFormat(t, f)
	if got := len(spans(f)); got != 4 {
		t.Errorf("the rewritten file holds %d events, want 4", got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %v, want only trace.json (no temporary files left)", entries)
	}

	missing := filepath.Join(dir, "no", "such", "dir", "trace.json")
	if err := r.WriteFile(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("WriteFile into a missing directory: error %v, want one naming %s", err, missing)
	}
	var off *Recorder
	if err := off.WriteFile(path); err == nil {
		t.Error("WriteFile on a nil Recorder: no error")
	}
}

func TestNilRecorder(t *testing.T) {
	var r *Recorder
	t0 := time.Now()
	r.Span("c", "x", CatControl, t0, time.Millisecond, nil)
	r.Instant("c", "x", CatControl, t0, nil)
	r.Step(1, t0, "w0", time.Millisecond, time.Millisecond)
	r.StepPhases(1, t0, "w0", Phases{Compute: time.Millisecond})
	if r.Len() != 0 || r.Dropped() != 0 {
		t.Error("a nil Recorder reports events")
	}
	if _, err := r.WriteTo(&bytes.Buffer{}); err == nil {
		t.Error("WriteTo on a nil Recorder: no error")
	}
}

func TestEmptyTrace(t *testing.T) {
	f := write(t, NewRecorder(10))
	if len(spans(f)) != 0 {
		t.Errorf("an empty Recorder wrote events: %v", f.TraceEvents)
	}
}
