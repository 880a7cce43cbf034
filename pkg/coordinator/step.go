package coordinator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/ringtrain/ringtrain/pkg/coordinator/core"
	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/engine"
	"github.com/ringtrain/ringtrain/pkg/metrics"
	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/protocol"
	"github.com/ringtrain/ringtrain/pkg/trace"
	"github.com/ringtrain/ringtrain/pkg/train"
	pb "github.com/ringtrain/ringtrain/proto/ringtrain/v1"
)

// ErrDiverged reports replicas whose parameters differ.
var ErrDiverged = core.ErrDiverged

// Step implements train.Executor: the core runs the step on the current
// ring and commits it on every worker, or aborts it and tries again on a
// re-formed ring with the same global batch, so that no sample is lost or
// counted twice. A step whose totals are non-finite returns an error
// wrapping model.ErrNonFinite, having applied nothing.
func (c *Coordinator) Step(ctx context.Context, step int, batch []int, lr float64) (train.StepResult, error) {
	c.batch, c.lr = batch, lr
	end, err := c.drive(ctx, func(now time.Time) []core.Action { return c.core.BeginStep(now, step, len(batch)) })
	if err != nil {
		return train.StepResult{}, err
	}
	switch e := end.(type) {
	case core.Done:
		r := e.Result
		return train.StepResult{LossSum: r.LossSum, Correct: int(r.Correct), Count: int(r.Count)}, nil
	case core.Skipped:
		c.cfg.Metrics.Abort(metrics.ReasonNonFinite)
		return train.StepResult{}, fmt.Errorf("%w: %w", model.ErrNonFinite, e.Err)
	case core.Failed:
		return train.StepResult{}, e.Err
	}
	return train.StepResult{}, fmt.Errorf("coordinator: step ended with %T", end)
}

// Prepare implements train.Preparer: it waits for --min-workers and brings
// them up to date, so that the first step's time is the step's alone.
func (c *Coordinator) Prepare(ctx context.Context) error {
	end, err := c.drive(ctx, c.core.BeginReady)
	if err != nil {
		return err
	}
	if f, ok := end.(core.Failed); ok {
		return f.Err
	}
	return nil
}

// inflight holds the cancellation of the RPCs of one operation.
type inflight struct {
	mu      sync.Mutex
	step    map[uint64]context.CancelCauseFunc
	members map[string]context.CancelCauseFunc
	stops   []func() bool
	wg      sync.WaitGroup
}

func (f *inflight) memberCtx(parent context.Context, id string, timeout time.Duration) (context.Context, func()) {
	tctx, tcancel := context.WithTimeout(parent, timeout)
	cctx, cancel := context.WithCancelCause(tctx)
	f.mu.Lock()
	f.members[id] = cancel
	f.mu.Unlock()
	return cctx, func() { cancel(nil); tcancel() }
}

func (f *inflight) cancelAll(cause error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.step {
		c(cause)
	}
	for _, c := range f.members {
		c(cause)
	}
	for _, s := range f.stops {
		s()
	}
}

// drive runs one operation of the core (a step, or a refresh of the
// state): it starts it with begin, carries out the actions, feeds back the
// events, and returns the action that ends the operation. If ctx ends
// first, the RPCs in flight are cancelled and the core abandons the
// operation, except while a decided step is being committed: the commits
// are finished first, so that the step stays applied by all or none.
func (c *Coordinator) drive(ctx context.Context, begin func(time.Time) []core.Action) (core.Action, error) {
	c.op++
	op := c.op
	f := &inflight{step: map[uint64]context.CancelCauseFunc{}, members: map[string]context.CancelCauseFunc{}}
	defer func() {
		f.cancelAll(errors.New("operation over"))
		f.wg.Wait()
	}()
	// Membership news first, so the core decides on the newest view.
	var acts []core.Action
	for _, ev := range c.take() {
		acts = append(acts, c.core.Handle(c.clock.Now(), ev)...)
	}
	acts = append(acts, begin(c.clock.Now())...)
	for {
		for len(acts) > 0 {
			a := acts[0]
			acts = acts[1:]
			switch a := a.(type) {
			case core.Done:
				c.done(a)
				return a, nil
			case core.Skipped, core.Failed, core.StateReady:
				return a, nil
			case core.Wake:
				acts = append(acts, c.core.Handle(c.clock.Now(), core.Tick{})...)
			default:
				c.exec(ctx, op, f, a)
			}
		}
		done := ctx.Done()
		if c.core.Phase() == "committing" {
			done = nil // finish the commits of a decided step
		}
		select {
		case <-done:
			c.core.Abandon()
			return nil, ctx.Err()
		case <-c.notify:
		}
		for _, ev := range c.take() {
			acts = append(acts, c.core.Handle(c.clock.Now(), ev)...)
		}
	}
}

// exec carries out one action; RPCs run in goroutines that post their
// results as events of operation op.
func (c *Coordinator) exec(ctx context.Context, op uint64, f *inflight, a core.Action) {
	post := func(ev core.Event) { c.post(op, ev) }
	rpc := func(id string, fn func(w *workerConn) core.Event, fail func(error) core.Event) {
		w, err := c.conn(id)
		if err != nil {
			post(fail(err))
			return
		}
		f.wg.Go(func() { post(fn(w)) })
	}
	switch a := a.(type) {
	case core.FetchState:
		mctx, cancel := f.memberCtx(ctx, a.ID, a.Timeout)
		rpc(a.ID, func(w *workerConn) core.Event {
			defer cancel()
			s, err := c.fetchState(mctx, w)
			if err != nil {
				return core.StateFetched{ID: a.ID, Err: err}
			}
			c.mu.Lock()
			c.fetched[a.ID] = s
			c.mu.Unlock()
			return core.StateFetched{ID: a.ID, Steps: s.steps}
		}, func(err error) core.Event { cancel(); return core.StateFetched{ID: a.ID, Err: err} })
	case core.AdoptState:
		c.mu.Lock()
		c.state = c.fetched[a.ID]
		clear(c.fetched)
		c.mu.Unlock()
	case core.LoadState:
		mctx, cancel := f.memberCtx(ctx, a.ID, a.Timeout)
		s := c.state
		rpc(a.ID, func(w *workerConn) core.Event {
			defer cancel()
			return core.StateLoaded{ID: a.ID, Err: c.loadState(mctx, w, s)}
		}, func(err error) core.Event { cancel(); return core.StateLoaded{ID: a.ID, Err: err} })
	case core.RingFormed:
		c.stats.RingGenerations = a.Generation
		c.cfg.Metrics.RingGeneration(a.Generation)
		c.cfg.Metrics.WorldSize(len(a.Ring))
		c.log.Info("ring formed", "generation", a.Generation, "workers", len(a.Ring), "ring", core.RingIDs(a.Ring))
		c.observe(EventRing, "", -1, fmt.Sprintf("generation %d: %v", a.Generation, core.RingIDs(a.Ring)))
	case core.SendStep:
		c.sendStep(ctx, f, post, a)
	case core.Cancel:
		f.mu.Lock()
		if cancel := f.step[a.Generation]; cancel != nil {
			cancel(a.Cause)
		}
		f.mu.Unlock()
	case core.CancelMember:
		f.mu.Lock()
		if cancel := f.members[a.ID]; cancel != nil {
			cancel(a.Cause)
		}
		f.mu.Unlock()
	case core.CheckHealth:
		for _, id := range a.IDs {
			rpc(id, func(w *workerConn) core.Event {
				hctx, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				r, err := w.health.Check(hctx, &healthpb.HealthCheckRequest{})
				if err == nil && r.Status != healthpb.HealthCheckResponse_SERVING {
					err = fmt.Errorf("health status %s", r.Status)
				}
				return core.HealthChecked{ID: id, Err: err}
			}, func(err error) core.Event { return core.HealthChecked{ID: id, Err: err} })
		}
	case core.Commit:
		for _, id := range a.IDs {
			// Commits are small; a worker that cannot take one in time
			// (partitioned, hung) is suspect, and gossip cuts the wait
			// short when it declares the worker gone. The training loop's
			// cancellation does not stop a decided commit.
			mctx, cancel := f.memberCtx(context.WithoutCancel(ctx), id, a.Timeout)
			rpc(id, func(w *workerConn) core.Event {
				defer cancel()
				r, err := w.client.Commit(mctx, &pb.CommitRequest{RunId: c.runID, Generation: a.Generation, Step: uint64(a.Step), Apply: true, WantChecksum: a.WantChecksum})
				if err != nil {
					return core.CommitDone{ID: id, Generation: a.Generation, Err: err}
				}
				return core.CommitDone{ID: id, Generation: a.Generation, Checksum: digest(r.GetParamsSha256())}
			}, func(err error) core.Event {
				cancel()
				return core.CommitDone{ID: id, Generation: a.Generation, Err: err}
			})
		}
	case core.Waiting:
		if now := c.clock.Now(); now.Sub(c.waitLog) > 5*time.Second {
			c.log.Info("waiting for workers", "ready", a.Ready, "min_workers", a.Min,
				"hint", "start workers with: worker --join "+c.cluster.Self().GossipAddr+" (or run the coordinator with --local-workers N)")
			c.waitLog = now
		}
		stop := c.clock.AfterFunc(max(a.Until.Sub(c.clock.Now()), 0), func() { post(core.Tick{}) })
		f.mu.Lock()
		f.stops = append(f.stops, stop)
		f.mu.Unlock()
	case core.Suspected:
		c.log.Warn("worker suspect, left out of the ring", "worker", a.ID, "failures", a.Failures, "retry_in", a.RetryIn, "err", a.Err)
		c.observe(EventSuspect, a.ID, -1, fmt.Sprintf("%d failures, retry in %v: %v", a.Failures, a.RetryIn, a.Err))
	case core.Aborted:
		c.stats.Aborts++
		c.cfg.Metrics.Abort(a.Reason)
		c.log.Warn("step aborted", "step", a.Step, "generation", a.Generation, "attempt", a.Attempt,
			"detected_after_seconds", a.After.Seconds(), "reason", a.Reason, "err", a.Err)
		c.observe(EventAborted, "", a.Step, fmt.Sprintf("attempt %d, %s: %v", a.Attempt, a.Reason, a.Err))
	case core.Note:
		c.log.Info(a.Msg, "worker", a.ID, "optimizer_steps", a.Steps)
		if a.Msg == core.NoteBack {
			c.observe(EventReadmitted, a.ID, -1, a.Msg)
		}
	default:
		panic(fmt.Sprintf("coordinator: unknown action %T", a))
	}
}

// sendStep sends every ring member its Step, cancellable as one, with the
// attempt's deadline.
func (c *Coordinator) sendStep(ctx context.Context, f *inflight, post func(core.Event), a core.SendStep) {
	sctx, cancel := context.WithCancelCause(ctx)
	f.mu.Lock()
	f.step[a.Generation] = cancel
	f.stops = append(f.stops, c.clock.AfterFunc(a.Deadline, func() {
		post(core.DeadlinePassed{Generation: a.Generation, After: a.Deadline})
	}))
	f.mu.Unlock()
	addrs := make([]string, len(a.Ring))
	for i, m := range a.Ring {
		addrs[i] = m.Addr
	}
	c.mu.Lock()
	clear(c.reports)
	c.mu.Unlock()
	var commit *pb.CommitRequest
	if o := a.Commit; o != nil {
		commit = &pb.CommitRequest{RunId: c.runID, Generation: o.Generation, Step: uint64(o.Step), Apply: true, WantChecksum: o.WantChecksum}
	}
	var zero []byte
	if c.cfg.SkipZeroInputs && len(a.Ring) > 1 {
		zero = c.job.Train.ZeroFeatures(c.batch, nil)
	}
	for i, m := range a.Ring {
		r := a.Shards[i]
		req := &pb.StepRequest{
			RunId: c.runID, Generation: a.Generation, Step: uint64(a.Step), Ring: addrs, Rank: uint32(i),
			Shard: protocol.EncodeShard(c.job.Train, c.batch[r.Start:r.End]), Commit: commit, ZeroInputs: zero,
			LearningRate: c.lr,
		}
		w, err := c.conn(m.ID)
		if err != nil {
			post(core.StepFailed{ID: m.ID, Generation: a.Generation, Kind: core.FailRPC, Err: err})
			continue
		}
		f.wg.Go(func() {
			rep, err := w.client.Step(sctx, req)
			if err != nil {
				post(core.StepFailed{ID: m.ID, Generation: a.Generation, Kind: failKind(sctx, err), Err: err})
				return
			}
			c.mu.Lock()
			c.reports[m.ID] = rep
			c.mu.Unlock()
			ev := core.StepReported{ID: m.ID, Generation: a.Generation,
				Report: core.Report{LossSum: rep.LossSum, Correct: rep.Correct, Count: rep.Count}}
			if rep.Commit != nil {
				ev.Commit = &core.CommitAck{Checksum: digest(rep.Commit.GetParamsSha256())}
			}
			post(ev)
		})
	}
}

// failKind classifies a failed Step RPC by its typed reason, not its text.
func failKind(sctx context.Context, err error) core.FailKind {
	switch {
	case protocol.ReasonOf(err) == protocol.ReasonNonFinite:
		return core.FailNonFinite
	case context.Cause(sctx) != nil && status.Code(err) == codes.Canceled:
		return core.FailCancelled
	}
	return core.FailRPC
}

// done records a committed step's figures.
func (c *Coordinator) done(d core.Done) {
	if d.Recovery > 0 {
		c.stats.RecoverySeconds += d.Recovery.Seconds()
		c.stats.LastRecovery = d.Recovery
		c.cfg.Metrics.Recovery(d.Recovery)
		c.log.Info("step recovered", "step", d.Step, "generation", d.Generation, "workers", d.World,
			"attempts", d.Attempts, "recovery_seconds", d.Recovery.Seconds())
		c.observe(EventRecovered, "", d.Step, fmt.Sprintf("%d attempts, %.3f s, %d workers", d.Attempts, d.Recovery.Seconds(), d.World))
	}
	c.cfg.Metrics.StepDone(d.Took, int(d.Result.Count), d.Result.LossSum/float64(max(d.Result.Count, 1)))
	c.mu.Lock()
	defer c.mu.Unlock()
	begin := c.clock.Now().Add(-d.Took)
	var compute, comm, exposed float64
	var sent uint64
	for id, r := range c.reports {
		c.cfg.Metrics.WorkerCompute(id, secondsDur(r.ComputeSeconds))
		c.cfg.Trace.StepPhases(uint64(d.Step), begin, id, trace.Phases{Compute: secondsDur(r.ComputeSeconds),
			Allreduce: secondsDur(r.AllreduceSeconds), Exposed: secondsDur(r.AllreduceExposedSeconds)})
		compute = max(compute, r.ComputeSeconds)
		comm = max(comm, r.AllreduceSeconds)
		exposed = max(exposed, r.AllreduceExposedSeconds)
		sent = r.BytesSent
	}
	c.stats.ComputeSeconds += compute
	c.stats.AllreduceSeconds += comm
	c.stats.ExposedSeconds += exposed
	c.lastCompute, c.lastAllreduce = secondsDur(compute), secondsDur(comm)
	c.stats.BytesSentPerStep = sent
	c.cfg.Metrics.Allreduce(int64(sent), secondsDur(comm))
	if c.cfg.Observer != nil {
		obs := StepObservation{Step: d.Step, Generation: d.Generation, Attempts: d.Attempts, Took: d.Took, Recovery: d.Recovery}
		for id, r := range c.reports {
			obs.Workers = append(obs.Workers, WorkerStep{ID: id, Compute: secondsDur(r.ComputeSeconds),
				Allreduce: secondsDur(r.AllreduceSeconds), Exposed: secondsDur(r.AllreduceExposedSeconds), Samples: int(r.Count)})
		}
		slices.SortFunc(obs.Workers, func(a, b WorkerStep) int { return strings.Compare(a.ID, b.ID) })
		c.cfg.Observer.ObserveStep(obs)
	}
}

// Evaluate implements train.Executor: the coordinator fetches the current
// parameters from a worker and evaluates ds itself.
func (c *Coordinator) Evaluate(ctx context.Context, ds *data.Dataset) (float64, int, error) {
	s, err := c.currentState(ctx)
	if err != nil {
		return 0, 0, err
	}
	copy(c.evalNet.Params, s.params)
	return engine.Evaluate(c.evalNet, ds, &c.buf)
}

// Params implements train.Executor.
func (c *Coordinator) Params(ctx context.Context) ([]float32, error) {
	s, err := c.currentState(ctx)
	if err != nil {
		return nil, err
	}
	return s.params, nil
}

// State returns the replicas' current parameters and optimizer state.
func (c *Coordinator) State(ctx context.Context) ([]float32, *model.Optimizer, error) {
	s, err := c.currentState(ctx)
	if err != nil {
		return nil, nil, err
	}
	return s.params, s.opt, nil
}

func (c *Coordinator) currentState(ctx context.Context) (*snapshot, error) {
	end, err := c.drive(ctx, c.core.BeginRefresh)
	if err != nil {
		return nil, err
	}
	if f, ok := end.(core.Failed); ok {
		return nil, f.Err
	}
	return c.state, nil
}

// LastStepTimes implements train.StepTimer: the slowest worker's compute
// and all-reduce time in the last committed step.
func (c *Coordinator) LastStepTimes() (compute, allreduce time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastCompute, c.lastAllreduce
}

// WorldSize implements train.Executor.
func (c *Coordinator) WorldSize() int { return c.core.WorldSize() }

func secondsDur(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// digest reads a replica's parameter digest; anything but 32 bytes reads as
// zero, which differs from every real digest's bytes as they are compared.
func digest(b []byte) core.Digest {
	var d core.Digest
	if len(b) == len(d) {
		copy(d[:], b)
	}
	return d
}
