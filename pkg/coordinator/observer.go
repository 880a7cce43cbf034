package coordinator

import "time"

// Observer sees what the coordinator does, as it happens: every committed
// step with each worker's figures, and the events of the ring. The
// dashboard and the straggler detector are observers. Its methods are
// called from the goroutine that drives training (Step) or watches the
// membership (Event); they must be quick and must not call back into the
// Coordinator.
type Observer interface {
	ObserveStep(StepObservation)
	ObserveEvent(Event)
}

// StepObservation is one committed step as the coordinator saw it.
type StepObservation struct {
	Step       int // counted from 0 over the run
	Generation uint64
	Attempts   int
	Took       time.Duration // the committed attempt's wall time
	Recovery   time.Duration // from the first abort to the commit (0: none)
	// Workers are the ring members' reports, sorted by id.
	Workers []WorkerStep
}

// WorkerStep is one worker's part of a step, as it reported it: compute
// is forward and backward on its shard; the all-reduce overlaps it when
// buckets go during backward, and Exposed is the all-reduce's part after
// compute.
type WorkerStep struct {
	ID        string
	Compute   time.Duration
	Allreduce time.Duration
	Exposed   time.Duration
	Samples   int
}

// Event kinds.
const (
	EventJoined     = "joined"      // a worker was admitted
	EventLeft       = "left"        // a worker left gracefully
	EventFailed     = "failed"      // gossip declared a worker dead
	EventReadmitted = "readmitted"  // a worker came back and reloads the state
	EventSuspect    = "suspect"     // a worker is left out after a failure
	EventRing       = "ring formed" // a new ring generation
	EventAborted    = "aborted"     // a step attempt was aborted
	EventRecovered  = "recovered"   // a step committed after aborts
)

// Event is something that happened to the ring.
type Event struct {
	Time   time.Time
	Kind   string // one of the Event* constants
	Worker string // "" for events of the whole ring
	Step   int    // the step concerned, -1 when none
	Detail string
}

// observe sends ev to the observer, if any.
func (c *Coordinator) observe(kind, worker string, step int, detail string) {
	if c.cfg.Observer == nil {
		return
	}
	c.cfg.Observer.ObserveEvent(Event{Time: c.clock.Now(), Kind: kind, Worker: worker, Step: step, Detail: detail})
}
