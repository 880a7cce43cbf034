package core

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// harness drives a Core the way the coordinator does, with a fake time.
type harness struct {
	t   *testing.T
	c   *Core
	now time.Time
}

func newHarness(t *testing.T, cfg Config, ids ...string) *harness {
	h := &harness{t: t, c: New(cfg, 0), now: t0}
	for _, id := range ids {
		h.do(MemberJoined{ID: id, Addr: addr(id)})
	}
	return h
}

func addr(id string) string { return id + ":7071" }

func (h *harness) do(ev Event) []Action {
	h.t.Helper()
	return h.c.Handle(h.now, ev)
}

func (h *harness) advance(d time.Duration) { h.now = h.now.Add(d) }

// get returns the only action of type T in acts, failing the test if there
// is none or more than one.
func get[T Action](t *testing.T, acts []Action) T {
	t.Helper()
	var found []T
	for _, a := range acts {
		if v, ok := a.(T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("want one %T among %s", zero, describe(acts))
	}
	return found[0]
}

func has[T Action](acts []Action) bool {
	return slices.ContainsFunc(acts, func(a Action) bool { _, ok := a.(T); return ok })
}

func all[T Action](acts []Action) []T {
	var out []T
	for _, a := range acts {
		if v, ok := a.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func describe(acts []Action) string {
	var b strings.Builder
	b.WriteString("[")
	for i, a := range acts {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%T%+v", a, a)
	}
	return b.String() + "]"
}

// loadAll answers every LoadState with success.
func (h *harness) loadAll(acts []Action) []Action {
	h.t.Helper()
	var out []Action
	for _, l := range all[LoadState](acts) {
		out = append(out, h.do(StateLoaded{ID: l.ID})...)
	}
	return out
}

// report answers a SendStep with the same totals from every member.
func (h *harness) report(s SendStep, rep Report) []Action {
	h.t.Helper()
	var out []Action
	for _, r := range s.Ring {
		out = append(out, h.do(StepReported{ID: r.ID, Generation: s.Generation, Report: rep})...)
	}
	return out
}

func (h *harness) commitAll(c Commit) []Action {
	h.t.Helper()
	var out []Action
	for _, id := range c.IDs {
		out = append(out, h.do(CommitDone{ID: id, Generation: c.Generation, Checksum: Digest{7}})...)
	}
	return out
}

func (h *harness) healthyAll(c CheckHealth) []Action {
	h.t.Helper()
	var out []Action
	for _, id := range c.IDs {
		out = append(out, h.do(HealthChecked{ID: id})...)
	}
	return out
}

// settle answers explicit commits, fetches and loads with success until
// acts hold something else.
func (h *harness) settle(acts []Action) []Action {
	h.t.Helper()
	for range 10 {
		switch {
		case has[Commit](acts):
			acts = h.commitAll(get[Commit](h.t, acts))
		case has[FetchState](acts):
			acts = h.do(StateFetched{ID: get[FetchState](h.t, acts).ID, Steps: h.c.Committed()})
		case has[LoadState](acts):
			acts = h.loadAll(acts)
		default:
			return acts
		}
	}
	h.t.Fatalf("no end to the set-up: %s", describe(acts))
	return nil
}

// begin starts a step, settling commits and state transfers, and returns
// SendStep.
func (h *harness) begin(step, batch int) SendStep {
	h.t.Helper()
	return get[SendStep](h.t, h.settle(h.c.BeginStep(h.now, step, batch)))
}

// fullStep runs a step to its decision and returns Done.
func (h *harness) fullStep(step, batch int) Done {
	h.t.Helper()
	s := h.begin(step, batch)
	h.advance(10 * time.Millisecond)
	return get[Done](h.t, h.report(s, Report{Count: uint64(batch), Correct: 3, LossSum: 1.5}))
}

// reportAcked answers a SendStep that carries a commit: every member
// reports rep and acknowledges the commit with the checksum sums[id].
func (h *harness) reportAcked(s SendStep, rep Report, sums map[string]Digest) []Action {
	h.t.Helper()
	var out []Action
	for _, r := range s.Ring {
		out = append(out, h.do(StepReported{ID: r.ID, Generation: s.Generation, Report: rep, Commit: &CommitAck{Checksum: sums[r.ID]}})...)
	}
	return out
}

func TestFirstStepLoadsStateAndCommits(t *testing.T) {
	h := newHarness(t, Config{MinWorkers: 2}, "w1", "w0")
	acts := h.c.BeginStep(h.now, 0, 10)
	loads := all[LoadState](acts)
	if len(loads) != 2 || has[SendStep](acts) {
		t.Fatalf("a new ring of workers without state must load it first: %s", describe(acts))
	}
	acts = h.loadAll(acts)
	rf := get[RingFormed](t, acts)
	s := get[SendStep](t, acts)
	if rf.Generation != 1 || s.Generation != 1 || !slices.Equal(ringIDList(s.Ring), []string{"w0", "w1"}) {
		t.Fatalf("ring %v generation %d, want w0,w1 sorted by id in generation 1", ringIDList(s.Ring), s.Generation)
	}
	if len(s.Shards) != 2 || s.Shards[0].End-s.Shards[0].Start != 5 || s.Shards[1].End != 10 {
		t.Fatalf("shards %v, want two contiguous halves of 10", s.Shards)
	}
	acts = h.report(s, Report{Count: 10, Correct: 4})
	d := get[Done](t, acts)
	if has[Commit](acts) {
		t.Fatal("the commit of a decided step must wait for the next request")
	}
	if h.c.Committed() != 1 {
		t.Fatalf("committed %d after the decision, want 1", h.c.Committed())
	}
	if d.Result.Count != 10 || d.World != 2 || d.Recovery != 0 {
		t.Fatalf("done %+v", d)
	}
	// The same members: the next step reuses the generation, no loads, and
	// its requests carry the commit of step 0.
	acts = h.c.BeginStep(h.now, 1, 10)
	s2 := get[SendStep](t, acts)
	if s2.Generation != 1 || s2.Commit == nil || s2.Commit.Step != 0 || s2.Commit.Generation != 1 || has[Commit](acts) {
		t.Fatalf("an unchanged ring keeps its generation and carries the commit: %s", describe(acts))
	}
	get[Done](t, h.reportAcked(s2, Report{Count: 10}, nil))
	// Before the state is read (evaluation, checkpoint) the held commit
	// goes out explicitly, then the state is fetched.
	acts = h.c.BeginRefresh(h.now)
	c := get[Commit](t, acts)
	if c.Step != 1 || len(c.IDs) != 2 {
		t.Fatalf("explicit commit %+v", c)
	}
	f := get[FetchState](t, h.commitAll(c))
	get[StateReady](t, h.do(StateFetched{ID: f.ID, Steps: 2}))
}

func TestTransitions(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"skip of a non-finite step ends the generation and costs nothing else", func(t *testing.T) {
			h := newHarness(t, Config{}, "w0", "w1")
			h.fullStep(0, 8)
			s := h.begin(1, 8)
			var acts []Action
			for _, r := range s.Ring {
				acts = append(acts, h.do(StepFailed{ID: r.ID, Generation: s.Generation, Kind: FailNonFinite, Err: errors.New("NaN")})...)
			}
			sk := get[Skipped](t, acts)
			if !errors.Is(sk.Err, ErrNonFinite) || has[Aborted](acts) || has[Cancel](acts) || has[Commit](acts) {
				t.Fatalf("a non-finite step is skipped, not aborted or committed: %s", describe(acts))
			}
			if h.c.Committed() != 1 {
				t.Fatalf("committed %d, want 1: the skipped step applied nothing", h.c.Committed())
			}
			// The next step (the same step number: nothing was committed)
			// runs on a new generation, so frames of the skipped attempt
			// cannot be taken for the next one's. The skipped attempt's
			// reports did not acknowledge the commit of step 0 it carried,
			// so that goes out explicitly first (workers apply it once).
			acts = h.c.BeginStep(h.now, 1, 8)
			if c := get[Commit](t, acts); c.Step != 0 {
				t.Fatalf("explicit commit of step %d, want 0", c.Step)
			}
			s2 := get[SendStep](t, h.settle(acts))
			if s2.Generation == s.Generation || s2.Commit != nil {
				t.Fatalf("the step after a skip: generation %d (skipped %d), carried commit %v", s2.Generation, s.Generation, s2.Commit)
			}
			d := get[Done](t, h.report(s2, Report{Count: 8}))
			if d.Attempts != 1 {
				t.Fatalf("attempts %d, want 1", d.Attempts)
			}
		}},
		{"non-finite on some workers only is divergence", func(t *testing.T) {
			h := newHarness(t, Config{}, "w0", "w1")
			s := h.begin(0, 8)
			h.do(StepFailed{ID: "w0", Generation: s.Generation, Kind: FailNonFinite})
			acts := h.do(StepReported{ID: "w1", Generation: s.Generation, Report: Report{Count: 8}})
			if f := get[Failed](t, acts); !errors.Is(f.Err, ErrDiverged) {
				t.Fatalf("got %v", f.Err)
			}
		}},
		{"an RPC failure cancels the others, health-checks and retries on a new generation", func(t *testing.T) {
			h := newHarness(t, Config{}, "w0", "w1", "w2")
			h.fullStep(0, 9)
			s := h.begin(1, 9)
			acts := h.do(StepFailed{ID: "w1", Generation: s.Generation, Kind: FailRPC, Err: errors.New("connection reset")})
			if cn := get[Cancel](t, acts); cn.Generation != s.Generation {
				t.Fatalf("cancel of generation %d, want %d", cn.Generation, s.Generation)
			}
			h.do(StepFailed{ID: "w0", Generation: s.Generation, Kind: FailCancelled})
			h.advance(30 * time.Millisecond)
			acts = h.do(StepFailed{ID: "w2", Generation: s.Generation, Kind: FailCancelled})
			ab := get[Aborted](t, acts)
			if ab.Reason != ReasonRPC || !strings.Contains(ab.Err.Error(), "w1") || ab.After != 30*time.Millisecond {
				t.Fatalf("aborted %+v: want the RPC failure of w1 as the cause", ab)
			}
			ch := get[CheckHealth](t, acts)
			acts = h.do(HealthChecked{ID: "w0"})
			acts = append(acts, h.do(HealthChecked{ID: "w1", Err: errors.New("unavailable")})...)
			acts = append(acts, h.do(HealthChecked{ID: "w2"})...)
			if len(ch.IDs) != 3 {
				t.Fatalf("health checks %v", ch.IDs)
			}
			sus := get[Suspected](t, acts)
			if sus.ID != "w1" || sus.RetryIn != DefaultBackoffBase {
				t.Fatalf("suspected %+v", sus)
			}
			// Step 0's commit rode on the aborted attempt: unacknowledged,
			// it goes out explicitly before the ring changes.
			c := get[Commit](t, acts)
			if c.Step != 0 || len(c.IDs) != 3 {
				t.Fatalf("explicit commit %+v", c)
			}
			acts = h.do(CommitDone{ID: "w0", Generation: c.Generation})
			acts = append(acts, h.do(CommitDone{ID: "w1", Generation: c.Generation, Err: errors.New("refused")})...)
			acts = append(acts, h.do(CommitDone{ID: "w2", Generation: c.Generation})...)
			s2 := get[SendStep](t, acts)
			if !slices.Equal(ringIDList(s2.Ring), []string{"w0", "w2"}) || s2.Generation != s.Generation+1 || s2.Attempt != 2 {
				t.Fatalf("retry on %v generation %d attempt %d", ringIDList(s2.Ring), s2.Generation, s2.Attempt)
			}
			h.advance(50 * time.Millisecond)
			d := get[Done](t, h.report(s2, Report{Count: 9}))
			if d.Attempts != 2 || d.Recovery != 50*time.Millisecond || d.World != 2 {
				t.Fatalf("done %+v", d)
			}
		}},
		{"a stale report of an earlier generation is ignored", func(t *testing.T) {
			h := newHarness(t, Config{}, "w0", "w1")
			s := h.begin(0, 4)
			h.do(StepFailed{ID: "w0", Generation: s.Generation, Kind: FailRPC, Err: errors.New("reset")})
			acts := h.do(StepFailed{ID: "w1", Generation: s.Generation, Kind: FailCancelled})
			s2 := get[SendStep](t, h.healthyAll(get[CheckHealth](t, acts)))
			if s2.Generation != s.Generation+1 {
				t.Fatalf("generation %d", s2.Generation)
			}
			// A late answer of the first attempt changes nothing.
			for _, ev := range []Event{
				StepReported{ID: "w0", Generation: s.Generation, Report: Report{Count: 4}},
				StepFailed{ID: "w1", Generation: s.Generation, Kind: FailRPC},
				CommitDone{ID: "w0", Generation: s.Generation},
			} {
				if acts := h.do(ev); len(acts) != 0 {
					t.Fatalf("%T of generation %d gave %s", ev, s.Generation, describe(acts))
				}
			}
			get[Done](t, h.report(s2, Report{Count: 4}))
		}},
		{"a crash during commit: the step counts, the worker reloads", func(t *testing.T) {
			h := newHarness(t, Config{}, "w0", "w1", "w2")
			h.fullStep(0, 6)
			s := h.begin(1, 6)
			get[Done](t, h.reportAcked(s, Report{Count: 6}, nil))
			// A checkpoint reads the state: the commit of step 1 goes out.
			c := get[Commit](t, h.c.BeginRefresh(h.now))
			h.do(CommitDone{ID: "w0", Generation: c.Generation})
			acts := h.do(CommitDone{ID: "w1", Generation: c.Generation, Err: errors.New("connection reset")})
			if get[Suspected](t, acts).ID != "w1" {
				t.Fatal("w1 must be suspect")
			}
			acts = h.do(CommitDone{ID: "w2", Generation: c.Generation})
			get[StateReady](t, h.do(StateFetched{ID: get[FetchState](t, acts).ID, Steps: 2}))
			if h.c.Committed() != 2 {
				t.Fatalf("committed %d", h.c.Committed())
			}
			// Next step: w1 is left out while suspect, a new generation.
			acts = h.c.BeginStep(h.now, 2, 6)
			s2 := get[SendStep](t, acts)
			if !slices.Equal(ringIDList(s2.Ring), []string{"w0", "w2"}) || s2.Generation == s.Generation || s2.Commit != nil {
				t.Fatalf("ring %v generation %d commit %v", ringIDList(s2.Ring), s2.Generation, s2.Commit)
			}
			get[Done](t, h.report(s2, Report{Count: 6}))
			// After its backoff w1 comes back, but its state is stale: the
			// driver's copy is too, so step 2's commit goes out, the state
			// is fetched from the ring, then loaded into w1.
			h.advance(DefaultBackoffBase)
			acts = h.c.BeginStep(h.now, 3, 6)
			acts = h.commitAll(get[Commit](t, acts))
			f := get[FetchState](t, acts)
			if f.ID != "w0" {
				t.Fatalf("fetch from %s, want w0 (a synced ring member)", f.ID)
			}
			acts = h.do(StateFetched{ID: "w0", Steps: h.c.Committed()})
			if get[AdoptState](t, acts).ID != "w0" || get[LoadState](t, acts).ID != "w1" {
				t.Fatalf("after the fetch: %s", describe(acts))
			}
			s3 := get[SendStep](t, h.loadAll(acts))
			if len(s3.Ring) != 3 {
				t.Fatalf("ring %v", ringIDList(s3.Ring))
			}
		}},
		{"a ring member leaving during a step aborts it at once", func(t *testing.T) {
			h := newHarness(t, Config{}, "w0", "w1")
			s := h.begin(0, 4)
			acts := h.do(MemberLeft{ID: "w1", Addr: addr("w1"), Failed: true})
			if cn := get[Cancel](t, acts); !strings.Contains(cn.Cause.Error(), "left the gossip cluster") {
				t.Fatalf("cause %v", cn.Cause)
			}
			h.do(StepFailed{ID: "w0", Generation: s.Generation, Kind: FailCancelled})
			acts = h.do(StepFailed{ID: "w1", Generation: s.Generation, Kind: FailRPC})
			if ab := get[Aborted](t, acts); ab.Reason != ReasonGossip {
				t.Fatalf("reason %s", ab.Reason)
			}
			s2 := get[SendStep](t, h.healthyAll(get[CheckHealth](t, acts)))
			if !slices.Equal(ringIDList(s2.Ring), []string{"w0"}) {
				t.Fatalf("ring %v", ringIDList(s2.Ring))
			}
		}},
		{"the deadline aborts a hung attempt", func(t *testing.T) {
			h := newHarness(t, Config{StepTimeout: 3 * time.Second}, "w0", "w1")
			s := h.begin(0, 4)
			if s.Deadline != 3*time.Second {
				t.Fatalf("first deadline %v, want the step timeout", s.Deadline)
			}
			h.do(StepReported{ID: "w0", Generation: s.Generation, Report: Report{Count: 4}})
			acts := h.do(DeadlinePassed{Generation: s.Generation, After: s.Deadline})
			get[Cancel](t, acts)
			acts = h.do(StepFailed{ID: "w1", Generation: s.Generation, Kind: FailCancelled})
			if ab := get[Aborted](t, acts); ab.Reason != ReasonDeadline {
				t.Fatalf("reason %s", ab.Reason)
			}
			// A deadline of an old generation is ignored.
			if acts := h.do(DeadlinePassed{Generation: s.Generation}); len(acts) != 0 {
				t.Fatalf("stale deadline: %s", describe(acts))
			}
		}},
		{"a worker that comes back during a step joins at the next one", func(t *testing.T) {
			h := newHarness(t, Config{}, "w0", "w1", "w2")
			h.fullStep(0, 6)
			h.do(MemberLeft{ID: "w2", Addr: addr("w2"), Failed: true})
			s := h.begin(1, 6)
			if len(s.Ring) != 2 {
				t.Fatalf("ring %v", ringIDList(s.Ring))
			}
			acts := h.do(MemberBack{ID: "w2", Addr: addr("w2")})
			if has[Cancel](acts) || has[SendStep](acts) {
				t.Fatalf("a returning worker outside the ring must not disturb the step: %s", describe(acts))
			}
			get[Done](t, h.report(s, Report{Count: 6}))
			acts = h.c.BeginStep(h.now, 2, 6)
			acts = h.commitAll(get[Commit](t, acts))
			get[FetchState](t, acts)
			acts = h.do(StateFetched{ID: "w0", Steps: h.c.Committed()})
			if get[LoadState](t, acts).ID != "w2" {
				t.Fatalf("w2 must reload: %s", describe(acts))
			}
			s2 := get[SendStep](t, h.loadAll(acts))
			if len(s2.Ring) != 3 || s2.Generation == s.Generation {
				t.Fatalf("ring %v generation %d", ringIDList(s2.Ring), s2.Generation)
			}
		}},
		{"below --min-workers the core waits, and resumes when a worker joins", func(t *testing.T) {
			h := newHarness(t, Config{MinWorkers: 2}, "w0")
			acts := h.c.BeginStep(h.now, 0, 4)
			w := get[Waiting](t, acts)
			if w.Ready != 1 || w.Min != 2 || !w.Until.Equal(h.now.Add(DefaultWaitTick)) {
				t.Fatalf("waiting %+v", w)
			}
			if acts := h.do(Tick{}); !has[Waiting](acts) {
				t.Fatalf("still one worker: %s", describe(acts))
			}
			acts = h.do(MemberJoined{ID: "w1", Addr: addr("w1")})
			get[Wake](t, acts)
			acts = h.do(Tick{})
			if len(all[LoadState](acts)) != 2 {
				t.Fatalf("after the join: %s", describe(acts))
			}
		}},
		{"below --min-workers after a failure: wait until the suspect's backoff ends", func(t *testing.T) {
			h := newHarness(t, Config{MinWorkers: 2}, "w0", "w1")
			s := h.begin(0, 4)
			h.do(StepFailed{ID: "w0", Generation: s.Generation, Kind: FailRPC})
			acts := h.do(StepFailed{ID: "w1", Generation: s.Generation, Kind: FailCancelled})
			acts = h.do(HealthChecked{ID: "w0", Err: errors.New("down")})
			acts = append(acts, h.do(HealthChecked{ID: "w1"})...)
			w := get[Waiting](t, acts)
			if !w.Until.Equal(h.now.Add(DefaultBackoffBase)) {
				t.Fatalf("wait until %v, want the end of w0's backoff", w.Until)
			}
			h.advance(DefaultBackoffBase)
			acts = h.do(Tick{})
			if len(all[LoadState](acts)) != 1 || get[LoadState](t, acts).ID != "w0" {
				t.Fatalf("after the backoff: %s", describe(acts))
			}
		}},
		{"a spare takes the place of a lost worker", func(t *testing.T) {
			h := newHarness(t, Config{MaxWorkers: 2}, "w0", "w1")
			h.fullStep(0, 4)
			h.do(MemberJoined{ID: "a-spare", Addr: addr("a-spare")})
			s := h.begin(1, 4)
			if !slices.Equal(ringIDList(s.Ring), []string{"w0", "w1"}) {
				t.Fatalf("the synced workers keep their places, the newcomer waits: %v", ringIDList(s.Ring))
			}
			h.do(MemberLeft{ID: "w0", Addr: addr("w0")})
			h.do(StepFailed{ID: "w0", Generation: s.Generation, Kind: FailRPC})
			acts := h.do(StepFailed{ID: "w1", Generation: s.Generation, Kind: FailCancelled})
			acts = h.healthyAll(get[CheckHealth](t, acts))
			acts = h.commitAll(get[Commit](t, acts))
			f := get[FetchState](t, acts)
			acts = h.do(StateFetched{ID: f.ID, Steps: h.c.Committed()})
			if get[LoadState](t, acts).ID != "a-spare" {
				t.Fatalf("the spare must load the state: %s", describe(acts))
			}
			s2 := get[SendStep](t, h.loadAll(acts))
			if !slices.Equal(ringIDList(s2.Ring), []string{"a-spare", "w1"}) {
				t.Fatalf("ring %v", ringIDList(s2.Ring))
			}
		}},
		{"different totals are divergence", func(t *testing.T) {
			h := newHarness(t, Config{}, "w0", "w1")
			s := h.begin(0, 4)
			h.do(StepReported{ID: "w0", Generation: s.Generation, Report: Report{Count: 4, Correct: 1}})
			acts := h.do(StepReported{ID: "w1", Generation: s.Generation, Report: Report{Count: 4, Correct: 2}})
			if f := get[Failed](t, acts); !errors.Is(f.Err, ErrDiverged) || !strings.Contains(f.Err.Error(), "w0 and w1") {
				t.Fatalf("got %v", f.Err)
			}
		}},
		{"different checksums are divergence", func(t *testing.T) {
			h := newHarness(t, Config{CheckEvery: 1}, "w0", "w1")
			h.fullStep(0, 4)
			s := h.begin(1, 4)
			if s.Commit == nil || !s.Commit.WantChecksum {
				t.Fatal("checksums not asked for")
			}
			// Equal checksums pass; the next step's commit carries the ask.
			get[Done](t, h.reportAcked(s, Report{Count: 4}, map[string]Digest{"w0": {5}, "w1": {5}}))
			s = get[SendStep](t, h.c.BeginStep(h.now, 2, 4))
			acts := h.reportAcked(s, Report{Count: 4}, map[string]Digest{"w0": {1}, "w1": {2}})
			if f := get[Failed](t, acts); !errors.Is(f.Err, ErrDiverged) || !strings.Contains(f.Err.Error(), "after step 1") {
				t.Fatalf("got %v", f.Err)
			}
			// The same through an explicit commit.
			h = newHarness(t, Config{CheckEvery: 1}, "w0", "w1")
			h.fullStep(0, 4)
			c := get[Commit](t, h.c.BeginRefresh(h.now))
			h.do(CommitDone{ID: "w0", Generation: c.Generation, Checksum: Digest{1}})
			acts = h.do(CommitDone{ID: "w1", Generation: c.Generation, Checksum: Digest{2}})
			if f := get[Failed](t, acts); !errors.Is(f.Err, ErrDiverged) {
				t.Fatalf("got %v", f.Err)
			}
		}},
		{"a wrong sample count is retried", func(t *testing.T) {
			h := newHarness(t, Config{}, "w0")
			s := h.begin(0, 4)
			acts := h.report(s, Report{Count: 3})
			if ab := get[Aborted](t, acts); !strings.Contains(ab.Err.Error(), "counted 3 samples") {
				t.Fatalf("aborted %v", ab.Err)
			}
		}},
		{"the retry budget ends the run", func(t *testing.T) {
			h := newHarness(t, Config{MaxAttempts: 2, BackoffBase: time.Nanosecond}, "w0")
			var acts []Action
			s := h.begin(0, 4)
			for attempt := 1; attempt <= 2; attempt++ {
				acts = h.do(StepFailed{ID: "w0", Generation: s.Generation, Kind: FailRPC, Err: errors.New("boom")})
				acts = h.do(HealthChecked{ID: "w0"})
				if attempt == 1 {
					s = get[SendStep](t, acts)
				}
			}
			if f := get[Failed](t, acts); !errors.Is(f.Err, ErrAttempts) || !strings.Contains(f.Err.Error(), "boom") {
				t.Fatalf("got %v", f.Err)
			}
		}},
		{"no live worker holds the state", func(t *testing.T) {
			h := newHarness(t, Config{}, "w0", "w1")
			h.fullStep(0, 4)
			acts := h.commitAll(get[Commit](t, h.c.BeginRefresh(h.now)))
			f := get[FetchState](t, acts)
			acts = h.do(StateFetched{ID: f.ID, Err: errors.New("unavailable")})
			f = get[FetchState](t, acts)
			acts = h.do(StateFetched{ID: f.ID, Steps: 0}) // an old state
			if fl := get[Failed](t, acts); !errors.Is(fl.Err, ErrStateLost) || !strings.Contains(fl.Err.Error(), "holds 0 updates") {
				t.Fatalf("got %v", fl.Err)
			}
		}},
		{"refresh fetches once, then the copy is current", func(t *testing.T) {
			h := newHarness(t, Config{}, "w0")
			if acts := h.c.BeginRefresh(h.now); !has[StateReady](acts) {
				t.Fatalf("nothing committed yet: the initial state is current: %s", describe(acts))
			}
			h.fullStep(0, 4)
			acts := h.do(StateFetched{ID: "w0", Steps: 1}) // not asked for: ignored
			if len(acts) != 0 {
				t.Fatalf("unasked fetch: %s", describe(acts))
			}
			acts = h.commitAll(get[Commit](t, h.c.BeginRefresh(h.now)))
			acts = h.do(StateFetched{ID: get[FetchState](t, acts).ID, Steps: 1})
			get[StateReady](t, acts)
			if acts := h.c.BeginRefresh(h.now); !has[StateReady](acts) || has[FetchState](acts) {
				t.Fatalf("second refresh: %s", describe(acts))
			}
		}},
		{"a worker that joins again under its id replaces the old one", func(t *testing.T) {
			h := newHarness(t, Config{}, "w0", "w1")
			s := h.begin(0, 4)
			acts := h.do(MemberJoined{ID: "w1", Addr: "elsewhere:1"})
			get[Cancel](t, acts)
			h.do(StepFailed{ID: "w0", Generation: s.Generation, Kind: FailCancelled})
			acts = h.do(StepFailed{ID: "w1", Generation: s.Generation, Kind: FailRPC})
			acts = h.healthyAll(get[CheckHealth](t, acts))
			l := get[LoadState](t, acts)
			if l.ID != "w1" || l.Addr != "elsewhere:1" {
				t.Fatalf("load %+v", l)
			}
		}},
		{"a member lost during a state transfer cancels it", func(t *testing.T) {
			h := newHarness(t, Config{}, "w0", "w1")
			acts := h.c.BeginStep(h.now, 0, 4)
			acts = h.do(MemberLeft{ID: "w1", Addr: addr("w1")})
			if get[CancelMember](t, acts).ID != "w1" {
				t.Fatal("cancel w1")
			}
			h.do(StateLoaded{ID: "w0"})
			acts = h.do(StateLoaded{ID: "w1", Err: errors.New("cancelled")})
			s := get[SendStep](t, acts)
			if !slices.Equal(ringIDList(s.Ring), []string{"w0"}) {
				t.Fatalf("ring %v", ringIDList(s.Ring))
			}
		}},
		{"backoff grows with consecutive failures and is capped", func(t *testing.T) {
			h := newHarness(t, Config{BackoffBase: time.Second, BackoffMax: 3 * time.Second}, "w0")
			var got []time.Duration
			for range 4 {
				got = append(got, get[Suspected](t, h.c.suspect(h.now, "w0", errors.New("x"))).RetryIn)
			}
			if !slices.Equal(got, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}) {
				t.Fatalf("backoffs %v", got)
			}
		}},
		{"the deadline follows the step time", func(t *testing.T) {
			h := newHarness(t, Config{StepTimeout: 30 * time.Second, MinStepTimeout: 2 * time.Second}, "w0")
			s := h.begin(0, 4)
			h.advance(time.Second)
			get[Done](t, h.report(s, Report{Count: 4}))
			if d := h.c.StepDeadline(); d != 10*time.Second {
				t.Fatalf("deadline %v after a 1 s step, want 10 s", d)
			}
			if d := h.c.TransferDeadline(); d != 10*time.Second {
				t.Fatalf("transfer deadline %v", d)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}

func TestBeginReadyFormsTheRingWithoutAStep(t *testing.T) {
	h := newHarness(t, Config{MinWorkers: 2}, "w0")
	get[Waiting](t, h.c.BeginReady(h.now))
	acts := h.settle(h.do(MemberJoined{ID: "w1", Addr: addr("w1")}))
	acts = h.settle(append(acts, h.do(Tick{})...))
	get[RingFormed](t, acts)
	get[StateReady](t, acts)
	if has[SendStep](acts) || h.c.Phase() != "idle" {
		t.Fatalf("BeginReady ran a step: %s", describe(acts))
	}
	// The first step then goes out at once on that ring.
	s := get[SendStep](t, h.c.BeginStep(h.now, 0, 4))
	if s.Generation != 1 || len(s.Ring) != 2 {
		t.Fatalf("first step on generation %d with %d workers", s.Generation, len(s.Ring))
	}
}
