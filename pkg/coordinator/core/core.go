// Package core is the coordinator's protocol core, a pure state machine in
// the style of etcd-io/raft: it decides which workers form the ring, when a
// new ring generation starts, which workers must load the state first, who
// is suspect and for how long, what every report or error means, and whether
// a step is committed, aborted and retried, or skipped. It does no I/O,
// starts no goroutines and reads no clock: the caller feeds it events
// (membership changes, RPC results, deadlines, ticks, each with the time)
// and carries out the actions it returns.
//
// The states of one step:
//
//	        BeginStep
//	            |
//	            v
//	+------> forming ----(too few workers)----> waiting --(member, tick)--+
//	|           |  \                                                      |
//	|           |   +--(the ring changes: the held commit goes out)-->   |
//	|           |        committing --> fetching --> loading ------------+
//	|           v                                        |                |
//	|       stepping <-----------------------------------+----------------+
//	|        |  |  \
//	|        |  |   +--(every worker: non-finite totals)--> Skipped
//	|        |  v
//	|        |  Done (decided; its commit is held)
//	|        v
//	+--- checking <--(an RPC failed, a member left, the deadline passed)
//
// A decided step is applied by every survivor or by none: its commit is
// held and rides on the next step's requests when that step runs on the
// same ring (one round trip less per step); otherwise (the ring changes,
// an attempt failed, the state is read for an evaluation or a checkpoint)
// it goes out explicitly first. Workers apply a commit idempotently.
//
// Every attempt that is not committed (aborted or skipped) ends its ring
// generation: the next attempt runs on a new one, so no frame of an earlier
// attempt is ever accepted by a later one.
package core

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ringtrain/ringtrain/pkg/shard"
)

// Defaults of the coordinator's timing and retry settings; the command line
// takes its defaults from here.
const (
	DefaultStepTimeout        = 30 * time.Second
	DefaultMinStepTimeout     = 2 * time.Second
	DefaultMinTransferTimeout = 5 * time.Second
	DefaultMaxAttempts        = 20
	DefaultBackoffBase        = 250 * time.Millisecond
	DefaultBackoffMax         = 10 * time.Second
	// DefaultWaitTick is how often a coordinator waiting for workers looks
	// again even when nothing happened.
	DefaultWaitTick = time.Second
)

// Config holds the core's settings; zero values take the defaults.
type Config struct {
	MinWorkers int // training waits until this many workers are eligible
	// ShardBlock, when above 1, cuts global batches into shards of whole
	// blocks of this many samples (shard.SplitBlocks: exact reduction).
	ShardBlock int
	MaxWorkers int // at most this many train; the rest wait as spares (0: no limit)
	// CheckEvery asks for the replicas' parameter checksums every this many
	// steps (0: never).
	CheckEvery int
	// MaxAttempts bounds the attempts at one step before the run fails.
	MaxAttempts int
	// StepTimeout bounds one attempt; once steps have been timed the
	// deadline is ten times the recent step time, at least MinStepTimeout.
	StepTimeout, MinStepTimeout time.Duration
	// MinTransferTimeout is the shortest deadline of a state transfer.
	MinTransferTimeout time.Duration
	// A suspect worker is left out for BackoffBase << (failures-1), at most
	// BackoffMax.
	BackoffBase, BackoffMax time.Duration
	// WaitTick is the longest a waiting core sleeps without an event.
	WaitTick time.Duration
}

// WithDefaults returns c with every zero setting replaced by its default.
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.MinWorkers < 1 {
		c.MinWorkers = 1
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	def(&c.StepTimeout, DefaultStepTimeout)
	def(&c.MinStepTimeout, DefaultMinStepTimeout)
	def(&c.MinTransferTimeout, DefaultMinTransferTimeout)
	def(&c.BackoffBase, DefaultBackoffBase)
	def(&c.BackoffMax, DefaultBackoffMax)
	def(&c.WaitTick, DefaultWaitTick)
	return c
}

// Errors the core fails a step with; match them with errors.Is.
var (
	// ErrDiverged: replicas report different totals or checksums.
	ErrDiverged = errors.New("replicas diverged")
	// ErrStateLost: no live worker holds the run's current state.
	ErrStateLost = errors.New("training state lost")
	// ErrAttempts: the step failed MaxAttempts times.
	ErrAttempts = errors.New("too many failed attempts")
	// ErrNonFinite: the step's totals are NaN or infinite (the caller
	// skips the batch or fails the run).
	ErrNonFinite = errors.New("non-finite loss or gradient")
)

// FailKind classifies a failed RPC for the core.
type FailKind int

// The kinds of failure a driver reports.
const (
	// FailRPC: the call failed (connection refused or reset, an error
	// status from the worker, a ring error).
	FailRPC FailKind = iota
	// FailCancelled: the call was cancelled by the coordinator because of
	// another failure; it says nothing about this worker.
	FailCancelled
	// FailNonFinite: the worker completed the all-reduce and found the
	// totals non-finite.
	FailNonFinite
)

// Abort reasons, for metrics and logs.
const (
	ReasonRPC       = "rpc"
	ReasonGossip    = "gossip"
	ReasonDeadline  = "deadline"
	ReasonNonFinite = "nonfinite"
	ReasonOther     = "other"
)

// Report is what a worker answers for a step: the all-reduced totals.
type Report struct {
	LossSum float64
	Correct uint64
	Count   uint64
}

// Result is a committed step's totals.
type Result = Report

// RingMember is one position of a ring.
type RingMember struct {
	ID, Addr string
}

type phase int

const (
	idle phase = iota
	waiting
	fetching
	loading
	stepping
	checking
	committing
	refreshing
)

func (p phase) String() string {
	return [...]string{"idle", "waiting", "fetching", "loading", "stepping", "checking", "committing", "refreshing"}[p]
}

// member is an admitted worker as the core sees it.
type member struct {
	id, addr string
	synced   bool // holds the run's current state
	gone     bool // left or failed the gossip cluster, or was replaced
	// failures counts consecutive failed RPCs; a suspect member is left
	// out of rings until suspectUntil.
	failures     int
	suspectUntil time.Time
}

// Core is the coordinator's state machine. Its methods are not safe for
// concurrent use: one goroutine (the driver) owns it.
type Core struct {
	cfg     Config
	members map[string]*member

	ring       []RingMember
	generation uint64
	// newRing forces the next attempt onto a new generation (after an
	// aborted or skipped attempt).
	newRing bool
	// committed counts the updates the replicas hold; stateSteps those of
	// the driver's copy of the state.
	committed, stateSteps int64
	ewma                  time.Duration // recent successful attempts' duration
	world                 int

	phase phase
	st    *stepRun
	// held is the decided step whose commit has not reached every worker
	// of its ring yet: it rides on the next step's request, or goes out
	// explicitly before anything else happens.
	held *held
	// Refresh or fetch bookkeeping: the candidates not yet tried.
	candidates []string
	fetchErrs  []error
	fetchingID string // the candidate being fetched from
	// after says what follows a successful fetch.
	afterFetch phase
}

// stepRun is the step in progress.
type stepRun struct {
	step, batch int
	attempt     int
	firstAbort  time.Time
	lastErr     error

	// The current attempt.
	started   time.Time
	pending   map[string]bool // members whose answer is outstanding
	reports   map[string]Report
	nonFinite int
	nfErr     error // the first non-finite report
	cause     error // why the attempt is aborted (nil: not aborted)
	reason    string
	loadErr   bool
	carried   bool // the attempt's requests carry the held commit
	readyOnly bool // BeginReady: stop once the ring is formed
}

// held is a decided step's commit on its way to the ring that decided it.
type held struct {
	generation uint64
	step       int
	ids        []string // the ring that decided it: each member applies it
	check      bool     // compare the parameters' checksums after it
	acked      map[string]bool
	sums       map[string]Digest
	pending    map[string]bool // explicit Commit RPCs outstanding
}

// New returns a core whose replicas hold `committed` updates and whose
// driver holds a copy of that state.
func New(cfg Config, committed int64) *Core {
	return &Core{cfg: cfg.WithDefaults(), members: map[string]*member{}, committed: committed, stateSteps: committed}
}

// WorldSize returns the number of workers that ran the last committed step.
func (c *Core) WorldSize() int { return c.world }

// Committed returns the number of updates the replicas hold.
func (c *Core) Committed() int64 { return c.committed }

// Phase names the core's state, for logs and tests.
func (c *Core) Phase() string { return c.phase.String() }

// StepDeadline is the deadline of one attempt at a step: ten times the
// recent step time, at least MinStepTimeout and at most StepTimeout. A hung
// worker keeps its connections open and answers nothing, so this deadline,
// not the connection, tells that it is gone.
func (c *Core) StepDeadline() time.Duration {
	if c.ewma == 0 {
		return c.cfg.StepTimeout
	}
	return min(max(10*c.ewma, c.cfg.MinStepTimeout), c.cfg.StepTimeout)
}

// TransferDeadline bounds a state transfer or commit to one worker.
func (c *Core) TransferDeadline() time.Duration {
	return min(max(c.cfg.MinTransferTimeout, 10*c.ewma), c.cfg.StepTimeout)
}

// BeginStep starts step `step` over a global batch of `batch` samples.
func (c *Core) BeginStep(now time.Time, step, batch int) []Action {
	if c.phase != idle {
		panic(fmt.Sprintf("core: BeginStep in phase %s", c.phase))
	}
	c.st = &stepRun{step: step, batch: batch, attempt: 1}
	return c.form(now)
}

// BeginReady forms the ring for the next step (waiting for enough
// workers and loading the state into them) without running a step: it ends
// with StateReady, and the next BeginStep starts at once. A training loop
// calls it before it starts its clock.
func (c *Core) BeginReady(now time.Time) []Action {
	if c.phase != idle {
		panic(fmt.Sprintf("core: BeginReady in phase %s", c.phase))
	}
	c.st = &stepRun{attempt: 1, readyOnly: true}
	return c.form(now)
}

// BeginRefresh brings the driver's copy of the state up to date (for an
// evaluation or a checkpoint): it ends with StateReady or Failed.
func (c *Core) BeginRefresh(now time.Time) []Action {
	if c.phase != idle {
		panic(fmt.Sprintf("core: BeginRefresh in phase %s", c.phase))
	}
	if c.held != nil {
		return c.commitHeld(now)
	}
	return c.refresh()
}

// refresh fetches the state unless the driver's copy is current.
func (c *Core) refresh() []Action {
	if c.stateSteps == c.committed {
		c.phase = idle
		return []Action{StateReady{}}
	}
	c.phase = refreshing
	c.afterFetch = idle
	c.candidates, c.fetchErrs = c.stateCandidates(), nil
	return c.nextFetch()
}

// Handle feeds one event to the core and returns what to do.
func (c *Core) Handle(now time.Time, ev Event) []Action {
	switch e := ev.(type) {
	case MemberJoined:
		return c.joined(e)
	case MemberLeft:
		return c.left(e)
	case MemberBack:
		return c.back(e)
	case Tick:
		if c.phase == waiting {
			return c.form(now)
		}
	case StateFetched:
		return c.fetched(now, e)
	case StateLoaded:
		return c.loaded(now, e)
	case StepReported:
		return c.reported(now, e.ID, e.Generation, &e.Report, e.Commit, nil)
	case StepFailed:
		return c.reported(now, e.ID, e.Generation, nil, nil, &e)
	case DeadlinePassed:
		if c.phase == stepping && e.Generation == c.generation {
			return c.abort(fmt.Errorf("step %d did not finish within its deadline of %v", c.st.step, e.After), ReasonDeadline)
		}
	case HealthChecked:
		return c.healthChecked(now, e)
	case CommitDone:
		return c.commitDone(now, e)
	default:
		panic(fmt.Sprintf("core: unknown event %T", ev))
	}
	return nil
}

// --- membership ---

func (c *Core) joined(e MemberJoined) []Action {
	var acts []Action
	if old, ok := c.members[e.ID]; ok && !old.gone {
		// A restarted worker under the same id: the old one is gone.
		old.gone = true
		acts = c.memberGone(e.ID, fmt.Errorf("worker %s joined again", e.ID))
	}
	c.members[e.ID] = &member{id: e.ID, addr: e.Addr}
	return append(acts, c.wake()...)
}

func (c *Core) left(e MemberLeft) []Action {
	m, ok := c.members[e.ID]
	if !ok || m.addr != e.Addr || m.gone {
		return nil
	}
	m.gone = true
	return c.memberGone(e.ID, fmt.Errorf("worker %s left the gossip cluster", e.ID))
}

func (c *Core) back(e MemberBack) []Action {
	m, ok := c.members[e.ID]
	if !ok || !m.gone || m.addr != e.Addr {
		return nil
	}
	// Declared dead (a pause, a partition) and back: admitted again with
	// fresh state, at the next ring formation.
	m.gone, m.synced, m.failures, m.suspectUntil = false, false, 0, time.Time{}
	return append([]Action{Note{Msg: NoteBack, ID: e.ID}}, c.wake()...)
}

// NoteBack is the Note of a worker declared dead that is back in the
// cluster (it is readmitted with fresh state).
const NoteBack = "worker is back in the cluster; it will reload the state"

// memberGone reacts to the loss of member id during an operation.
func (c *Core) memberGone(id string, cause error) []Action {
	switch c.phase {
	case stepping:
		if c.inRing(id) {
			return c.abort(cause, ReasonGossip)
		}
	case loading:
		if c.st.pending[id] {
			return []Action{CancelMember{ID: id, Cause: cause}}
		}
	case committing:
		if c.held != nil && c.held.pending[id] {
			return []Action{CancelMember{ID: id, Cause: cause}}
		}
	case fetching, refreshing:
		if id == c.fetchingID {
			return []Action{CancelMember{ID: id, Cause: cause}}
		}
	}
	return nil
}

// wake re-forms the ring of a waiting core at once.
func (c *Core) wake() []Action {
	if c.phase == waiting {
		return []Action{Wake{}}
	}
	return nil
}

func (c *Core) inRing(id string) bool {
	return slices.ContainsFunc(c.ring, func(r RingMember) bool { return r.ID == id })
}

// suspect leaves m out of rings for a backoff that grows with consecutive
// failures, and makes it reload the state before it trains again.
func (c *Core) suspect(now time.Time, id string, err error) []Action {
	m := c.members[id]
	if m == nil {
		return nil
	}
	m.synced = false
	m.failures++
	backoff := min(c.cfg.BackoffBase<<min(m.failures-1, 6), c.cfg.BackoffMax)
	m.suspectUntil = now.Add(backoff)
	return []Action{Suspected{ID: id, Failures: m.failures, RetryIn: backoff, Err: err}}
}

// --- forming a ring ---

// form picks the ring for the next attempt: enough eligible workers, those
// holding the state first (so that spares beyond MaxWorkers are the
// newest), sorted by id.
func (c *Core) form(now time.Time) []Action {
	var live []*member
	var until time.Time
	for _, m := range c.members {
		if m.gone {
			continue
		}
		if now.Before(m.suspectUntil) {
			if until.IsZero() || m.suspectUntil.Before(until) {
				until = m.suspectUntil
			}
			continue
		}
		live = append(live, m)
	}
	if len(live) < c.cfg.MinWorkers {
		c.phase = waiting
		wake := now.Add(c.cfg.WaitTick)
		if !until.IsZero() && until.Before(wake) {
			wake = until
		}
		return []Action{Waiting{Ready: len(live), Min: c.cfg.MinWorkers, Until: wake}}
	}
	slices.SortFunc(live, func(a, b *member) int { return cmp.Compare(a.id, b.id) })
	slices.SortStableFunc(live, func(a, b *member) int { return boolOrder(b.synced, a.synced) })
	if c.cfg.MaxWorkers > 0 && len(live) > c.cfg.MaxWorkers {
		live = live[:c.cfg.MaxWorkers]
	}
	slices.SortFunc(live, func(a, b *member) int { return cmp.Compare(a.id, b.id) })
	ring := make([]RingMember, len(live))
	var fresh []string
	for i, m := range live {
		ring[i] = RingMember{ID: m.id, Addr: m.addr}
		if !m.synced {
			fresh = append(fresh, m.id)
		}
	}
	same := slices.Equal(ring, c.ring) && !c.newRing && len(fresh) == 0
	if c.held != nil && (!same || !slices.Equal(c.held.ids, ringIDList(ring))) {
		// The next attempt cannot carry the held commit to its ring.
		return c.commitHeld(now)
	}
	if same {
		return c.send(now)
	}
	c.ring = ring
	if len(fresh) == 0 {
		return c.startGeneration(now)
	}
	if c.stateSteps != c.committed {
		c.phase = fetching
		c.afterFetch = loading
		c.candidates, c.fetchErrs = c.stateCandidates(), nil
		return c.nextFetch()
	}
	return c.load(fresh)
}

func (c *Core) load(ids []string) []Action {
	c.phase = loading
	c.st.pending = map[string]bool{}
	c.st.loadErr = false
	acts := make([]Action, 0, len(ids))
	for _, id := range ids {
		c.st.pending[id] = true
		acts = append(acts, LoadState{ID: id, Addr: c.members[id].addr, Timeout: c.TransferDeadline()})
	}
	return acts
}

func (c *Core) loaded(now time.Time, e StateLoaded) []Action {
	if c.phase != loading || !c.st.pending[e.ID] {
		return nil
	}
	delete(c.st.pending, e.ID)
	var acts []Action
	if e.Err != nil {
		c.st.loadErr = true
		acts = append(acts, c.suspect(now, e.ID, fmt.Errorf("load state: %w", e.Err))...)
	} else if m := c.members[e.ID]; m != nil && !m.gone {
		m.synced = true
		acts = append(acts, Note{Msg: "worker brought up to date", ID: e.ID, Steps: c.committed})
	}
	if len(c.st.pending) > 0 {
		return acts
	}
	if c.st.loadErr {
		return append(acts, c.form(now)...)
	}
	// Every newcomer holds the state; a member lost meanwhile shows in form.
	return append(acts, c.formAfterLoad(now)...)
}

// formAfterLoad starts the generation if the ring is still what was
// loaded, or forms it again.
func (c *Core) formAfterLoad(now time.Time) []Action {
	for _, r := range c.ring {
		m := c.members[r.ID]
		if m == nil || m.gone || !m.synced || m.addr != r.Addr {
			return c.form(now)
		}
	}
	return c.startGeneration(now)
}

// stateCandidates lists the workers to fetch the state from: the ring's
// synced members first, then any live worker (every commit of the last
// step may have failed on the ring, but a worker that applied it still
// holds the state).
func (c *Core) stateCandidates() []string {
	var first, rest []string
	for _, r := range c.ring {
		if m := c.members[r.ID]; m != nil && !m.gone && m.synced {
			first = append(first, m.id)
		}
	}
	for _, m := range c.sortedMembers() {
		if !m.gone && !slices.Contains(first, m.id) {
			rest = append(rest, m.id)
		}
	}
	return append(first, rest...)
}

func (c *Core) nextFetch() []Action {
	if len(c.candidates) == 0 {
		c.phase = idle
		err := fmt.Errorf("%w: no live worker holds the state after %d updates (%v); restart the coordinator to resume from the newest checkpoint",
			ErrStateLost, c.committed, errors.Join(c.fetchErrs...))
		c.st = nil
		return []Action{Failed{Err: err}}
	}
	id := c.candidates[0]
	c.candidates = c.candidates[1:]
	c.fetchingID = id
	return []Action{FetchState{ID: id, Addr: c.members[id].addr, Timeout: c.TransferDeadline()}}
}

func (c *Core) fetched(now time.Time, e StateFetched) []Action {
	if (c.phase != fetching && c.phase != refreshing) || e.ID != c.fetchingID {
		return nil
	}
	err := e.Err
	if err == nil && e.Steps != c.committed {
		err = fmt.Errorf("worker %s holds %d updates, the run has committed %d", e.ID, e.Steps, c.committed)
	}
	if err != nil {
		c.fetchErrs = append(c.fetchErrs, err)
		return c.nextFetch()
	}
	c.stateSteps = c.committed
	acts := []Action{AdoptState{ID: e.ID}}
	if c.phase == refreshing {
		c.phase = idle
		return append(acts, StateReady{})
	}
	return append(acts, c.form(now)...)
}

func (c *Core) startGeneration(now time.Time) []Action {
	c.generation++
	c.newRing = false
	return append([]Action{RingFormed{Generation: c.generation, Ring: slices.Clone(c.ring)}}, c.send(now)...)
}

// --- stepping ---

func (c *Core) send(now time.Time) []Action {
	st := c.st
	if st.readyOnly {
		c.phase, c.st = idle, nil
		return []Action{StateReady{}}
	}
	c.phase = stepping
	st.started = now
	st.pending = map[string]bool{}
	st.reports = map[string]Report{}
	st.nonFinite, st.nfErr, st.cause, st.reason = 0, nil, nil, ""
	for _, r := range c.ring {
		st.pending[r.ID] = true
	}
	s := SendStep{
		Generation: c.generation, Step: st.step, Attempt: st.attempt, Ring: slices.Clone(c.ring),
		Shards: shard.SplitBlocks(st.batch, len(c.ring), c.cfg.ShardBlock), Deadline: c.StepDeadline(),
	}
	st.carried = c.held != nil
	if h := c.held; h != nil {
		s.Commit = &CommitOrder{Generation: h.generation, Step: h.step, WantChecksum: h.check}
	}
	return []Action{s}
}

// abort cancels the attempt in progress; it ends once every member has
// answered.
func (c *Core) abort(cause error, reason string) []Action {
	if c.st.cause != nil {
		return nil
	}
	c.st.cause, c.st.reason = cause, reason
	return []Action{Cancel{Generation: c.generation, Cause: cause}}
}

func (c *Core) reported(now time.Time, id string, gen uint64, rep *Report, ack *CommitAck, fail *StepFailed) []Action {
	st := c.st
	if c.phase != stepping || gen != c.generation || !st.pending[id] {
		return nil // stale: an earlier generation, or an answer already counted
	}
	delete(st.pending, id)
	var acts []Action
	switch {
	case rep != nil:
		st.reports[id] = *rep
		if st.carried && ack != nil {
			c.held.acked[id] = true
			c.held.sums[id] = ack.Checksum
		}
	case fail.Kind == FailNonFinite:
		st.nonFinite++
		if st.nfErr == nil {
			st.nfErr = fmt.Errorf("worker %s: %w", id, fail.Err)
		}
	case fail.Kind == FailCancelled:
		// Cancelled because of another failure: says nothing about id.
		if st.cause == nil {
			acts = c.abort(fmt.Errorf("worker %s: %w", id, fail.Err), ReasonOther)
		}
	default:
		if st.cause == nil {
			acts = c.abort(fmt.Errorf("worker %s: %w", id, fail.Err), ReasonRPC)
		}
	}
	if len(st.pending) > 0 {
		return acts
	}
	return append(acts, c.attemptOver(now)...)
}

// attemptOver decides once every member of the ring has answered.
func (c *Core) attemptOver(now time.Time) []Action {
	st := c.st
	n := len(c.ring)
	if st.cause == nil && st.nonFinite == n {
		// Every worker found the all-reduced totals non-finite: the batch
		// itself is bad, and retrying it would give the same. No update is
		// held anywhere; the next attempt uses a new generation.
		c.newRing = true
		c.phase, c.st = idle, nil
		return []Action{Skipped{Err: fmt.Errorf("step %d: %w: all %d workers of generation %d found it (%v)", st.step, ErrNonFinite, n, c.generation, st.nfErr)}}
	}
	if st.cause == nil && st.nonFinite > 0 {
		return c.fail(fmt.Errorf("%w: %d of %d workers found the totals of step %d non-finite", ErrDiverged, st.nonFinite, n, st.step))
	}
	if st.cause != nil {
		return c.aborted(now)
	}
	first := st.reports[c.ring[0].ID]
	for _, r := range c.ring[1:] {
		if got := st.reports[r.ID]; got.Count != first.Count || got.Correct != first.Correct {
			return c.fail(fmt.Errorf("%w: workers %s and %s report different totals for step %d", ErrDiverged, c.ring[0].ID, r.ID, st.step))
		}
	}
	if int(first.Count) != st.batch {
		st.cause, st.reason = fmt.Errorf("the ring counted %d samples in step %d, the batch has %d", first.Count, st.step, st.batch), ReasonOther
		return c.aborted(now)
	}
	// The carried commit of the previous step reached every member.
	var acts []Action
	if st.carried {
		if acts = c.resolveHeld(); len(acts) > 0 {
			return acts
		}
	}
	// Decided: every survivor applies the step, when its commit reaches it
	// (on the next step's request, or explicitly).
	c.committed++
	c.held = &held{
		generation: c.generation, step: st.step, ids: ringIDList(c.ring),
		check: c.cfg.CheckEvery > 0 && (st.step+1)%c.cfg.CheckEvery == 0,
		acked: map[string]bool{}, sums: map[string]Digest{},
	}
	took := now.Sub(st.started)
	if c.ewma == 0 {
		c.ewma = took
	} else {
		c.ewma = (4*c.ewma + took) / 5
	}
	c.world = n
	done := Done{Result: first, Step: st.step, Generation: c.generation, World: n, Attempts: st.attempt, Took: took}
	if !st.firstAbort.IsZero() {
		done.Recovery = now.Sub(st.firstAbort)
	}
	c.phase, c.st = idle, nil
	return []Action{done}
}

// commitHeld sends the held commit explicitly to the members of its ring
// that have not acknowledged it; the operation in progress (a step or a
// refresh) goes on once every one has answered.
func (c *Core) commitHeld(now time.Time) []Action {
	h := c.held
	c.phase = committing
	h.pending = map[string]bool{}
	var ids []string
	for _, id := range h.ids {
		if !h.acked[id] {
			h.pending[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return c.heldDone(now)
	}
	return []Action{Commit{Generation: h.generation, Step: h.step, IDs: ids, WantChecksum: h.check, Timeout: c.TransferDeadline()}}
}

// resolveHeld compares the checksums the held commit returned and drops it;
// it returns Failed if replicas differ.
func (c *Core) resolveHeld() []Action {
	h := c.held
	c.held = nil
	if !h.check {
		return nil
	}
	var ok []string
	for _, id := range h.ids {
		if _, has := h.sums[id]; has && h.acked[id] {
			ok = append(ok, id)
		}
	}
	for _, id := range ok[min(1, len(ok)):] {
		if h.sums[id] != h.sums[ok[0]] {
			a, b := h.sums[ok[0]], h.sums[id]
			return c.fail(fmt.Errorf("%w after step %d: worker %s has parameters with SHA-256 %x..., worker %s %x...",
				ErrDiverged, h.step, ok[0], a[:8], id, b[:8]))
		}
	}
	return nil
}

// heldDone continues what the explicit commit interrupted.
func (c *Core) heldDone(now time.Time) []Action {
	if acts := c.resolveHeld(); len(acts) > 0 {
		return acts
	}
	if c.st != nil {
		return c.form(now)
	}
	return c.refresh()
}

// aborted ends an aborted attempt: the ring's members are health-checked
// before the next attempt.
func (c *Core) aborted(now time.Time) []Action {
	st := c.st
	if st.firstAbort.IsZero() {
		st.firstAbort = now
	}
	st.lastErr = st.cause
	c.newRing = true
	c.phase = checking
	ids := ringIDList(c.ring)
	st.pending = map[string]bool{}
	for _, id := range ids {
		st.pending[id] = true
	}
	return []Action{
		Aborted{Step: st.step, Generation: c.generation, Attempt: st.attempt, Err: st.cause, Reason: st.reason, After: now.Sub(st.started)},
		CheckHealth{IDs: ids},
	}
}

func (c *Core) healthChecked(now time.Time, e HealthChecked) []Action {
	if c.phase != checking || !c.st.pending[e.ID] {
		return nil
	}
	delete(c.st.pending, e.ID)
	var acts []Action
	if e.Err != nil {
		acts = append(acts, c.suspect(now, e.ID, fmt.Errorf("health check after an aborted step: %w", e.Err))...)
	}
	if len(c.st.pending) > 0 {
		return acts
	}
	c.st.attempt++
	if c.st.attempt > c.cfg.MaxAttempts {
		return append(acts, c.fail(fmt.Errorf("step %d failed %d times: %w: %w", c.st.step, c.cfg.MaxAttempts, ErrAttempts, c.st.lastErr))...)
	}
	return append(acts, c.form(now)...)
}

func (c *Core) commitDone(now time.Time, e CommitDone) []Action {
	h := c.held
	if c.phase != committing || h == nil || e.Generation != h.generation || !h.pending[e.ID] {
		return nil
	}
	delete(h.pending, e.ID)
	var acts []Action
	if e.Err != nil {
		// The others applied the step; this one may or may not have. It
		// reloads the state before it trains again.
		acts = append(acts, c.suspect(now, e.ID, fmt.Errorf("commit of step %d: %w", h.step, e.Err))...)
	} else {
		if m := c.members[e.ID]; m != nil {
			m.failures = 0
		}
		h.acked[e.ID] = true
		h.sums[e.ID] = e.Checksum
	}
	if len(h.pending) > 0 {
		return acts
	}
	return append(acts, c.heldDone(now)...)
}

func (c *Core) fail(err error) []Action {
	c.phase, c.st = idle, nil
	return []Action{Failed{Err: err}}
}

func (c *Core) sortedMembers() []*member {
	ms := make([]*member, 0, len(c.members))
	for _, m := range c.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *member) int { return cmp.Compare(a.id, b.id) })
	return ms
}

func ringIDList(r []RingMember) []string {
	out := make([]string, len(r))
	for i, m := range r {
		out[i] = m.ID
	}
	return out
}

func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// RingIDs joins the ids of a ring for logs.
func RingIDs(r []RingMember) string { return strings.Join(ringIDList(r), ",") }

// Abandon gives up the operation in progress because the caller stopped
// (its context ended): nothing is held, and the next attempt uses a new
// ring generation. A decided step cannot be abandoned: the caller finishes
// its commits first.
func (c *Core) Abandon() {
	if c.phase == committing {
		panic("core: Abandon while committing a decided step")
	}
	c.phase, c.st = idle, nil
	c.newRing = true
}
