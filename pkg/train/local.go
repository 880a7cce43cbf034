package train

import (
	"context"
	"fmt"

	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/engine"
	"github.com/ringtrain/ringtrain/pkg/model"
)

// LocalExecutor runs every step in this process: the reference trainer
// against which the distributed one is checked.
type LocalExecutor struct {
	Net   *model.Network
	Opt   *model.Optimizer
	Train *data.Dataset
	// Accumulate computes every step's gradient in this many micro-batches
	// (engine.ShardGradientsK; 0 or 1: in one piece).
	Accumulate int

	buf   engine.Buffers
	limit float64 // exact reduction's block-sum limit (SetExact)
}

// NewLocalExecutor returns an executor that trains net with opt on train.
func NewLocalExecutor(net *model.Network, opt *model.Optimizer, train *data.Dataset) (*LocalExecutor, error) {
	if train.Features != net.Config.Inputs {
		return nil, fmt.Errorf("data set %s has %d features but the network takes %d inputs", train.Name, train.Features, net.Config.Inputs)
	}
	return &LocalExecutor{Net: net, Opt: opt, Train: train}, nil
}

// SetExact turns exact reduction on (ex.On()) or off: every step's sums
// are then the fixed-point block sums a distributed run of any size
// computes, so the trajectory is bit-identical to it. maxBlocks is the
// number of blocks of the run's largest global batch (engine.MaxBlocks),
// which bounds the fixed-point range.
func (e *LocalExecutor) SetExact(ex model.Exact, maxBlocks int) error {
	if err := e.Net.SetExact(ex); err != nil {
		return err
	}
	e.limit = engine.ExactLimit(ex, maxBlocks)
	return nil
}

// Step implements Executor. A step whose loss or gradient is not finite is
// refused before the update, leaving the parameters as they were.
func (e *LocalExecutor) Step(_ context.Context, step int, batch []int, lr float64) (StepResult, error) {
	var r StepResult
	var err error
	if e.Net.Exact().On() {
		engine.ShardGradientsExact(e.Net, e.Train, batch, e.Accumulate, &e.buf, e.limit, nil)
		r, err = engine.FinishExact(e.Net, e.limit)
	} else {
		r = engine.ShardGradientsK(e.Net, e.Train, batch, e.Accumulate, &e.buf)
		err = engine.CheckStep(e.Net.Pool(), e.Net.Grads, r)
	}
	if err != nil {
		return r, fmt.Errorf("step %d: %w", step, err)
	}
	if r.Count > 0 {
		e.Opt.StepLR(e.Net.Params, e.Net.Grads, 1/float32(r.Count), lr)
	}
	return r, nil
}

// Evaluate implements Executor.
func (e *LocalExecutor) Evaluate(_ context.Context, ds *data.Dataset) (float64, int, error) {
	return engine.Evaluate(e.Net, ds, &e.buf)
}

// WorldSize implements Executor: one process.
func (e *LocalExecutor) WorldSize() int { return 1 }

// Params implements Executor.
func (e *LocalExecutor) Params(context.Context) ([]float32, error) { return e.Net.Params, nil }

// State implements Executor.
func (e *LocalExecutor) State(context.Context) ([]float32, *model.Optimizer, error) {
	return e.Net.Params, e.Opt, nil
}
