package train

import (
	"context"
	"fmt"

	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/model"
)

// evalChunk bounds the rows evaluated at once, and so the activation memory.
const evalChunk = 256

// LocalExecutor runs every step in this process: the reference trainer
// against which the distributed one is checked.
type LocalExecutor struct {
	Net   *model.Network
	Opt   *model.Optimizer
	Train *data.Dataset

	x      []float32
	labels []int32
}

// NewLocalExecutor returns an executor that trains net with opt on train.
func NewLocalExecutor(net *model.Network, opt *model.Optimizer, train *data.Dataset) (*LocalExecutor, error) {
	if train.Features != net.Config.Inputs {
		return nil, fmt.Errorf("data set %s has %d features but the network takes %d inputs", train.Name, train.Features, net.Config.Inputs)
	}
	return &LocalExecutor{Net: net, Opt: opt, Train: train}, nil
}

// Step implements Executor. A step whose loss or gradient is not finite is
// refused before the update, leaving the parameters as they were.
func (e *LocalExecutor) Step(_ context.Context, step int, batch []int) (StepResult, error) {
	r, err := ShardGradients(e.Net, e.Train, batch, &e.x, &e.labels)
	if err != nil {
		return r, fmt.Errorf("step %d: %w", step, err)
	}
	if r.Count > 0 {
		e.Opt.Step(e.Net.Params, e.Net.Grads, 1/float32(r.Count))
	}
	return r, nil
}

// ShardGradients zeroes net's gradients and fills them with the gradient sum
// over the rows of ds named by idx, returning the loss sum, correct count and
// sample count. x and labels are reusable buffers. This is the computation
// every worker does on its shard. It fails if the loss or a gradient is NaN or
// infinite.
func ShardGradients(net *model.Network, ds *data.Dataset, idx []int, x *[]float32, labels *[]int32) (StepResult, error) {
	if len(idx) == 0 {
		net.ZeroGrad()
		return StepResult{}, nil
	}
	f := ds.Features
	if cap(*x) < len(idx)*f {
		*x = make([]float32, len(idx)*f)
	}
	if cap(*labels) < len(idx) {
		*labels = make([]int32, len(idx))
	}
	xb, lb := (*x)[:len(idx)*f], (*labels)[:len(idx)]
	ds.Gather(idx, xb, lb)
	loss, correct := net.Gradients(xb, lb)
	r := StepResult{LossSum: loss, Correct: correct, Count: len(idx)}
	if err := model.CheckFinite("gradient", net.Grads); err != nil {
		return r, err
	}
	if err := model.CheckFinite("loss", []float32{float32(loss)}); err != nil {
		return r, err
	}
	return r, nil
}

// Evaluate implements Executor.
func (e *LocalExecutor) Evaluate(_ context.Context, ds *data.Dataset) (float64, int, error) {
	return EvaluateNetwork(e.Net, ds, &e.x, &e.labels)
}

// EvaluateNetwork returns the loss sum and correct count of net over ds,
// evaluated in chunks to bound memory.
func EvaluateNetwork(net *model.Network, ds *data.Dataset, x *[]float32, labels *[]int32) (float64, int, error) {
	if ds.Features != net.Config.Inputs {
		return 0, 0, fmt.Errorf("data set %s has %d features but the network takes %d inputs", ds.Name, ds.Features, net.Config.Inputs)
	}
	var loss float64
	correct := 0
	idx := make([]int, 0, evalChunk)
	for start := 0; start < ds.Rows(); start += evalChunk {
		idx = idx[:0]
		for i := start; i < min(start+evalChunk, ds.Rows()); i++ {
			idx = append(idx, i)
		}
		f := ds.Features
		if cap(*x) < len(idx)*f {
			*x = make([]float32, len(idx)*f)
		}
		if cap(*labels) < len(idx) {
			*labels = make([]int32, len(idx))
		}
		xb, lb := (*x)[:len(idx)*f], (*labels)[:len(idx)]
		ds.Gather(idx, xb, lb)
		l, c := net.Evaluate(xb, lb)
		loss += l
		correct += c
	}
	return loss, correct, nil
}

// WorldSize implements Executor: one process.
func (e *LocalExecutor) WorldSize() int { return 1 }

// Params implements Executor.
func (e *LocalExecutor) Params(context.Context) ([]float32, error) { return e.Net.Params, nil }

// State implements Executor.
func (e *LocalExecutor) State(context.Context) ([]float32, *model.Optimizer, error) {
	return e.Net.Params, e.Opt, nil
}
