package coordinator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/metrics"
	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/protocol"
	"github.com/ringtrain/ringtrain/pkg/train"
	pb "github.com/ringtrain/ringtrain/proto/ringtrain/v1"
)

// ErrDiverged reports replicas whose parameters differ.
var ErrDiverged = errors.New("replicas diverged")

// Step implements train.Executor: it runs the step on the current ring and
// commits it on every worker, or aborts it and tries again on a re-formed
// ring with the same global batch, so that no sample is lost or counted
// twice.
func (c *Coordinator) Step(ctx context.Context, step int, batch []int) (train.StepResult, error) {
	force := false
	var lastErr error
	var firstAbort time.Time
	for attempt := 1; attempt <= c.cfg.MaxAttempts; attempt++ {
		ring, err := c.formRing(ctx, force)
		if err != nil {
			return train.StepResult{}, err
		}
		started := time.Now()
		res, err := c.attempt(ctx, ring, step, batch)
		if err == nil {
			if !firstAbort.IsZero() {
				rec := time.Since(firstAbort)
				c.stats.RecoverySeconds += rec.Seconds()
				c.cfg.Metrics.Recovery(rec)
				c.stats.LastRecovery = rec
				c.log.Info("step recovered", "step", step, "generation", c.generation, "workers", len(ring),
					"attempts", attempt, "recovery_seconds", rec.Seconds())
			}
			return res, nil
		}
		if errors.Is(err, model.ErrNonFinite) {
			c.cfg.Metrics.Abort(metrics.ReasonNonFinite)
		}
		if errors.Is(err, ErrDiverged) || errors.Is(err, model.ErrNonFinite) || ctx.Err() != nil {
			return train.StepResult{}, err
		}
		lastErr = err
		c.stats.Aborts++
		c.cfg.Metrics.Abort(abortReason(err))
		now := time.Now()
		if firstAbort.IsZero() {
			firstAbort = now
		}
		c.log.Warn("step aborted", "step", step, "generation", c.generation, "attempt", attempt,
			"detected_after_seconds", now.Sub(started).Seconds(), "err", err)
		c.dropUnhealthy(ctx, ring)
		force = true
	}
	return train.StepResult{}, fmt.Errorf("step %d failed %d times: %w", step, c.cfg.MaxAttempts, lastErr)
}

// attempt runs one try at a step on ring: Step on every worker in parallel
// (cancelling all at the first failure), then Commit on every worker.
func (c *Coordinator) attempt(ctx context.Context, ring []*member, step int, batch []int) (train.StepResult, error) {
	n := len(ring)
	begin := time.Now()
	addrs := make([]string, n)
	for i, m := range ring {
		addrs[i] = m.addr
	}
	shards := shardsOf(batch, n)
	timeout := c.stepDeadline()
	tctx, tcancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("step %d did not finish within its deadline of %v", step, timeout))
	defer tcancel()
	sctx, cancelCause := context.WithCancelCause(tctx)
	defer cancelCause(nil)
	cancel := func() { cancelCause(errors.New("another worker failed the step")) }
	// Gossip may learn of a dead or partitioned ring member before any RPC
	// fails (a hung process keeps its connections open): abort at once.
	stopWatch := c.watchRing(sctx, ring, cancelCause)
	defer stopWatch()
	reports := make([]*pb.StepReport, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, m := range ring {
		req := &pb.StepRequest{
			RunId: c.runID, Generation: c.generation, Step: uint64(step), Ring: addrs, Rank: uint32(i),
			Shard: protocol.EncodeShard(c.job.Train, shards[i]),
		}
		wg.Go(func() {
			r, err := m.client.Step(sctx, req)
			if err != nil {
				errs[i] = fmt.Errorf("worker %s: %w", m.id, err)
				cancel() // the others would wait for this one's frames
				return
			}
			reports[i] = r
		})
	}
	wg.Wait()
	for i, err := range errs {
		if st, ok := status.FromError(errors.Unwrap(err)); ok && st.Code() == codes.DataLoss {
			// A NaN or Inf in a worker's loss or gradient: retrying the same
			// batch would give the same, so the training loop decides.
			return train.StepResult{}, fmt.Errorf("worker %s: %s: %w", ring[i].id, st.Message(), model.ErrNonFinite)
		}
	}
	if err := firstCause(errs); err != nil {
		if cause := context.Cause(sctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return train.StepResult{}, fmt.Errorf("%w (%v)", cause, err)
		}
		return train.StepResult{}, err
	}
	for i, r := range reports[1:] {
		if r.Count != reports[0].Count || r.Correct != reports[0].Correct {
			return train.StepResult{}, fmt.Errorf("%w: workers %s and %s report different totals for step %d", ErrDiverged, ring[0].id, ring[i+1].id, step)
		}
	}
	if int(reports[0].Count) != len(batch) {
		return train.StepResult{}, fmt.Errorf("the ring counted %d samples in step %d, the batch has %d", reports[0].Count, step, len(batch))
	}

	check := c.cfg.CheckEvery > 0 && (step+1)%c.cfg.CheckEvery == 0
	commits := make([]*pb.CommitReport, n)
	cerrs := make([]error, n)
	// Commits are small; a worker that cannot take one within the step
	// deadline (partitioned, hung) is suspect, and gossip cuts the wait
	// short when it declares the worker gone.
	deadline := c.stepDeadline()
	for i, m := range ring {
		wg.Go(func() {
			cctx, ccancel := c.memberContext(context.WithoutCancel(ctx), []*member{m}, deadline)
			defer ccancel()
			r, err := m.client.Commit(cctx, &pb.CommitRequest{RunId: c.runID, Generation: c.generation, Step: uint64(step), Apply: true, WantChecksum: check})
			commits[i], cerrs[i] = r, err
		})
	}
	wg.Wait()
	c.committed++
	var ok []int
	for i, err := range cerrs {
		if err != nil {
			// The others applied the step; this one may or may not have.
			// It must be brought up to date before it trains again.
			c.suspect(ring[i], fmt.Errorf("commit of step %d: %w", step, err))
			continue
		}
		ok = append(ok, i)
	}
	if check && len(ok) > 1 {
		first := commits[ok[0]].Checksum
		for _, i := range ok[1:] {
			if commits[i].Checksum != first {
				return train.StepResult{}, fmt.Errorf("%w after step %d: worker %s has checksum %08x, worker %s %08x",
					ErrDiverged, step, ring[ok[0]].id, first, ring[i].id, commits[i].Checksum)
			}
		}
	}
	took := time.Since(begin)
	c.observeStep(took)
	c.cfg.Metrics.StepDone(took, int(reports[0].Count), reports[0].LossSum/float64(max(reports[0].Count, 1)))
	for i, r := range reports {
		c.cfg.Metrics.WorkerCompute(ring[i].id, secondsDur(r.ComputeSeconds))
		c.cfg.Trace.Step(uint64(step), begin, ring[i].id, secondsDur(r.ComputeSeconds), secondsDur(r.AllreduceSeconds))
	}
	var compute, comm float64
	for _, r := range reports {
		compute = max(compute, r.ComputeSeconds)
		comm = max(comm, r.AllreduceSeconds)
	}
	c.stats.ComputeSeconds += compute
	c.stats.AllreduceSeconds += comm
	c.stats.BytesSentPerStep = reports[0].BytesSent
	c.cfg.Metrics.Allreduce(int64(reports[0].BytesSent), secondsDur(comm))
	c.mu.Lock()
	for _, i := range ok {
		ring[i].failures = 0
	}
	c.mu.Unlock()
	c.world = n
	return train.StepResult{LossSum: reports[0].LossSum, Correct: int(reports[0].Correct), Count: int(reports[0].Count)}, nil
}

// stepDeadline is the deadline of one attempt at a step: ten times the
// recent step time, at least MinStepTimeout and at most --step-timeout. A
// hung worker keeps its connections open and answers nothing, so this
// deadline, not the connection, tells that it is gone; a step that is only
// slow costs a retry, not correctness.
func (c *Coordinator) stepDeadline() time.Duration {
	if c.stepEWMA == 0 {
		return c.cfg.StepTimeout
	}
	return min(max(10*c.stepEWMA, MinStepTimeout), c.cfg.StepTimeout)
}

// observeStep feeds a successful step's duration into the running average.
func (c *Coordinator) observeStep(d time.Duration) {
	if c.stepEWMA == 0 {
		c.stepEWMA = d
		return
	}
	c.stepEWMA = (4*c.stepEWMA + d) / 5
}

// MinStepTimeout is the shortest deadline an attempt at a step gets.
const MinStepTimeout = 2 * time.Second

// watchRing cancels the step with a cause naming the member when gossip
// reports that a ring member left or failed. It returns a function that stops
// watching.
func (c *Coordinator) watchRing(ctx context.Context, ring []*member, cancel context.CancelCauseFunc) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c.mu.Lock()
			changed := c.changed
			for _, m := range ring {
				if m.gone {
					c.mu.Unlock()
					cancel(fmt.Errorf("worker %s left the gossip cluster", m.id))
					return
				}
			}
			c.mu.Unlock()
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-changed:
			}
		}
	}()
	return func() { close(stop); <-done }
}

// firstCause returns the most telling error: the first that is not a
// cancellation caused by another worker's failure.
func firstCause(errs []error) error {
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if first == nil {
			first = err
		}
		if code := status.Code(errors.Unwrap(err)); code != codes.Canceled {
			return err
		}
	}
	return first
}

// dropUnhealthy asks every ring member for its health and drops those that
// do not answer in time, so that the next ring is formed without them.
func (c *Coordinator) dropUnhealthy(ctx context.Context, ring []*member) {
	var wg sync.WaitGroup
	for _, m := range ring {
		wg.Go(func() {
			hctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			r, err := m.health.Check(hctx, &healthpb.HealthCheckRequest{})
			if err == nil && r.Status != healthpb.HealthCheckResponse_SERVING {
				err = fmt.Errorf("health status %s", r.Status)
			}
			if err != nil {
				c.suspect(m, fmt.Errorf("health check after an aborted step: %w", err))
			}
		})
	}
	wg.Wait()
}

// Evaluate implements train.Executor: the coordinator fetches the current
// parameters from a worker and evaluates ds itself.
func (c *Coordinator) Evaluate(ctx context.Context, ds *data.Dataset) (float64, int, error) {
	s, err := c.currentState(ctx)
	if err != nil {
		return 0, 0, err
	}
	copy(c.evalNet.Params, s.params)
	return train.EvaluateNetwork(c.evalNet, ds, &c.x, &c.labels)
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
	if err := c.refreshState(ctx); err != nil {
		return nil, err
	}
	return c.state, nil
}

// WorldSize implements train.Executor.
func (c *Coordinator) WorldSize() int { return c.world }

func secondsDur(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// abortReason sorts an aborted attempt's error for the metrics.
func abortReason(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "left the gossip cluster"):
		return metrics.ReasonGossip
	case strings.Contains(msg, "deadline"):
		return metrics.ReasonDeadline
	case status.Code(errors.Unwrap(err)) != codes.OK || strings.Contains(msg, "rpc error"):
		return metrics.ReasonRPC
	}
	return metrics.ReasonOther
}
