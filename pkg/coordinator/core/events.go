package core

import (
	"time"

	"github.com/ringtrain/ringtrain/pkg/shard"
)

// Event is something the driver tells the core.
type Event interface{ event() }

// MemberJoined: a worker was admitted (its Join RPC passed the checks).
type MemberJoined struct{ ID, Addr string }

// MemberLeft: gossip reports a worker gone (Failed: declared dead rather
// than a graceful leave).
type MemberLeft struct {
	ID, Addr string
	Failed   bool
}

// MemberBack: gossip reports a worker alive (it may be one that was
// declared dead and came back).
type MemberBack struct{ ID, Addr string }

// Tick tells a waiting core that time passed.
type Tick struct{}

// StateFetched answers FetchState: the fetched state holds Steps updates.
type StateFetched struct {
	ID    string
	Steps int64
	Err   error
}

// StateLoaded answers LoadState.
type StateLoaded struct {
	ID  string
	Err error
}

// StepReported: a worker finished the attempt of Generation with Report;
// Commit acknowledges the commit the request carried (nil: none).
type StepReported struct {
	ID         string
	Generation uint64
	Report     Report
	Commit     *CommitAck
}

// Digest is the SHA-256 of a replica's parameters (model.Digest).
type Digest [32]byte

// CommitAck is a worker's answer to a commit carried by a Step request.
type CommitAck struct{ Checksum Digest }

// StepFailed: a worker's Step RPC of Generation failed.
type StepFailed struct {
	ID         string
	Generation uint64
	Kind       FailKind
	Err        error
}

// DeadlinePassed: the deadline (After) of Generation's attempt passed.
type DeadlinePassed struct {
	Generation uint64
	After      time.Duration
}

// HealthChecked answers CheckHealth for one worker (Err nil: serving).
type HealthChecked struct {
	ID  string
	Err error
}

// CommitDone answers Commit for one worker.
type CommitDone struct {
	ID         string
	Generation uint64
	Checksum   Digest
	Err        error
}

func (MemberJoined) event()   {}
func (MemberLeft) event()     {}
func (MemberBack) event()     {}
func (Tick) event()           {}
func (StateFetched) event()   {}
func (StateLoaded) event()    {}
func (StepReported) event()   {}
func (StepFailed) event()     {}
func (DeadlinePassed) event() {}
func (HealthChecked) event()  {}
func (CommitDone) event()     {}

// Action is something the core asks the driver to do (or tells it, for
// logs and metrics). Done, Skipped, Failed and StateReady end the
// operation that BeginStep or BeginRefresh started.
type Action interface{ action() }

// FetchState: copy the state from worker ID; answer with StateFetched.
type FetchState struct {
	ID, Addr string
	Timeout  time.Duration
}

// AdoptState: the state fetched from ID is the run's current state.
type AdoptState struct{ ID string }

// LoadState: load the driver's copy of the state into worker ID; answer
// with StateLoaded.
type LoadState struct {
	ID, Addr string
	Timeout  time.Duration
}

// RingFormed: a new ring generation starts.
type RingFormed struct {
	Generation uint64
	Ring       []RingMember
}

// SendStep: send Step to every member of Ring (rank = index) with its shard
// of the global batch; answer each with StepReported or StepFailed, and
// with DeadlinePassed once Deadline has passed.
type SendStep struct {
	Generation uint64
	Step       int
	Attempt    int
	Ring       []RingMember
	Shards     []shard.Range
	Deadline   time.Duration
	// Commit, when set, is the previous step's commit: every request
	// carries it, and each worker applies it before it computes.
	Commit *CommitOrder
}

// CommitOrder names a decided step to apply.
type CommitOrder struct {
	Generation   uint64
	Step         int
	WantChecksum bool
}

// Cancel: cancel the Step RPCs of Generation with Cause.
type Cancel struct {
	Generation uint64
	Cause      error
}

// CancelMember: cancel the RPC in flight to worker ID (a transfer or a
// commit) with Cause.
type CancelMember struct {
	ID    string
	Cause error
}

// CheckHealth: ask each worker for its health; answer with HealthChecked.
type CheckHealth struct{ IDs []string }

// Commit: tell the workers IDs to apply the step held for Generation
// (idempotently: some may have applied it already); answer each with
// CommitDone.
type Commit struct {
	Generation   uint64
	Step         int
	IDs          []string
	WantChecksum bool
	Timeout      time.Duration
}

// Waiting: fewer than Min workers are eligible; the core forms the ring
// again at the next membership event or Tick (send one at Until).
type Waiting struct {
	Ready, Min int
	Until      time.Time
}

// Wake: a waiting core has news; send it a Tick now.
type Wake struct{}

// Suspected: worker ID is left out of rings for RetryIn.
type Suspected struct {
	ID       string
	Failures int
	RetryIn  time.Duration
	Err      error
}

// Aborted: the attempt of Generation failed and will be retried.
type Aborted struct {
	Step       int
	Generation uint64
	Attempt    int
	Err        error
	Reason     string        // one of the Reason constants
	After      time.Duration // from the attempt's start to the abort
}

// Note is a line for the log.
type Note struct {
	Msg   string
	ID    string
	Steps int64
}

// Done: the step is committed.
type Done struct {
	Result     Result
	Step       int
	Generation uint64
	World      int
	Attempts   int
	Took       time.Duration // the successful attempt
	Recovery   time.Duration // from the first abort to the commit (0: none)
}

// Skipped: the step's totals are non-finite; nothing was applied. Err
// wraps ErrNonFinite.
type Skipped struct{ Err error }

// Failed: the run cannot go on. Err wraps ErrDiverged, ErrStateLost or
// ErrAttempts.
type Failed struct{ Err error }

// StateReady: the driver's copy of the state is current.
type StateReady struct{}

func (FetchState) action()   {}
func (AdoptState) action()   {}
func (LoadState) action()    {}
func (RingFormed) action()   {}
func (SendStep) action()     {}
func (Cancel) action()       {}
func (CancelMember) action() {}
func (CheckHealth) action()  {}
func (Commit) action()       {}
func (Waiting) action()      {}
func (Wake) action()         {}
func (Suspected) action()    {}
func (Aborted) action()      {}
func (Note) action()         {}
func (Done) action()         {}
func (Skipped) action()      {}
func (Failed) action()       {}
func (StateReady) action()   {}
