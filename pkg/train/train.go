// Package train runs a training schedule: epochs of seeded permutations cut
// into global batches, each batch handed to an Executor that computes the
// gradient sums and applies the update, with an evaluation of the test set at
// every epoch end.
//
// The loop is the same whether the Executor is the in-process one of this
// package (LocalExecutor) or the distributed one of the coordinator: the
// schedule, and therefore the trajectory, does not depend on how the steps
// are executed.
package train

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/engine"
	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/report"
	"github.com/ringtrain/ringtrain/pkg/shard"
)

// StepResult holds the sums a step produced over its global batch.
type StepResult = engine.Totals

// Executor carries out training steps and evaluations.
type Executor interface {
	// Step trains on the global batch (row indices into the training set)
	// of step `step` (counted from 0 over the whole run) and applies one
	// synchronized update with learning rate lr (0: the optimizer's own
	// rate).
	Step(ctx context.Context, step int, batch []int, lr float64) (StepResult, error)
	// Evaluate returns the loss sum and the number of correct predictions
	// over every row of ds, without changing the parameters.
	Evaluate(ctx context.Context, ds *data.Dataset) (lossSum float64, correct int, err error)
	// WorldSize is the number of workers that ran the last step.
	WorldSize() int
	// Params returns the current parameters (the caller must not modify
	// them).
	Params(ctx context.Context) ([]float32, error)
	// State returns the current parameters and optimizer state, for
	// checkpoints (the caller must not modify them).
	State(ctx context.Context) ([]float32, *model.Optimizer, error)
}

// Preparer is an Executor that gets ready before the first step (a
// distributed one waits for its workers); Resume calls Prepare before it
// times any step.
type Preparer interface {
	Prepare(ctx context.Context) error
}

// ShuffleMode says whether batches are drawn anew every epoch or once.
type ShuffleMode int

// The shuffle modes of the lecture.
const (
	// ShuffleEpoch draws a new permutation every epoch.
	ShuffleEpoch ShuffleMode = iota
	// ShuffleOnce draws one permutation and reuses its batches every epoch.
	ShuffleOnce
)

// ParseShuffle maps a command-line name to a ShuffleMode.
func ParseShuffle(s string) (ShuffleMode, error) {
	switch s {
	case "epoch":
		return ShuffleEpoch, nil
	case "once":
		return ShuffleOnce, nil
	}
	return 0, fmt.Errorf("unknown shuffle mode %q (want epoch or once)", s)
}

// String returns the command-line name.
func (m ShuffleMode) String() string {
	if m == ShuffleOnce {
		return "once"
	}
	return "epoch"
}

// Schedule fixes which samples every step sees.
type Schedule struct {
	Epochs   int         // epochs to run
	MaxSteps int         // stop after this many steps in all (0: no limit)
	Batch    int         // global batch size; 0 or >= rows: full batch; 1: single sample
	Shuffle  ShuffleMode // reshuffle every epoch, or draw once
	Seed     uint64      // seed of the permutations
	// SkipNonFinite skips a batch whose loss or gradient is NaN or infinite
	// (no update is applied) instead of failing the run.
	SkipNonFinite bool
	// UntilLoss stops training after an epoch whose training loss is below
	// it (0: off).
	UntilLoss float64
	// Patience stops training once the test loss has not improved by more
	// than MinDelta for this many epochs (0: off; needs a test set).
	Patience int
	MinDelta float64
	// LR gives every step's learning rate (the zero value: the optimizer's
	// own rate at every step).
	LR LRSchedule
}

// Validate reports the first problem with the schedule.
func (s Schedule) Validate() error {
	switch {
	case s.Epochs < 1:
		return fmt.Errorf("epochs must be at least 1, got %d", s.Epochs)
	case s.MaxSteps < 0:
		return fmt.Errorf("steps must be 0 (no limit) or positive, got %d", s.MaxSteps)
	case s.Batch < 0:
		return fmt.Errorf("batch must be 0 (full batch) or positive, got %d", s.Batch)
	case s.UntilLoss < 0 || math.IsNaN(s.UntilLoss):
		return fmt.Errorf("until-loss must be 0 (off) or positive, got %v", s.UntilLoss)
	case s.Patience < 0:
		return fmt.Errorf("patience must be 0 (off) or positive, got %d", s.Patience)
	case s.MinDelta < 0 || math.IsNaN(s.MinDelta):
		return fmt.Errorf("min-delta must be 0 or positive, got %v", s.MinDelta)
	case s.LR != (LRSchedule{}):
		if err := s.LR.Validate(); err != nil {
			return fmt.Errorf("learning-rate schedule: %w", err)
		}
	}
	return nil
}

// Permutation returns the sample order of an epoch.
func (s Schedule) Permutation(epoch, rows int) []int {
	if s.Shuffle == ShuffleOnce {
		epoch = 0
	}
	return shard.Permutation(s.Seed, epoch, rows)
}

// Hooks are called by Run as training progresses; any may be nil.
type Hooks struct {
	// Step is called after every step with the epoch (from 1), the step
	// within the epoch (from 1), the steps in the epoch, the samples trained
	// so far and the running mean loss of the epoch.
	Step func(epoch, step, steps int, samples int64, loss float64)
	// Batch is called after every committed step with its own figures
	// (per-step curves, the dashboard).
	Batch func(BatchInfo)
	// LR is called before every step is executed with the global step
	// number (from 0 over the run) and the learning rate its update uses
	// (0: the optimizer's own rate). A step that is skipped (non-finite)
	// is announced and then not counted; the next one has the same number.
	LR func(step int, lr float64)
	// Epoch is called after every epoch's evaluation.
	Epoch func(rec report.EpochRecord)
	// Checkpoint is called every CheckpointEvery steps and after every
	// epoch's evaluation with the position reached; the executor holds the
	// matching state. An error is logged and training goes on: the previous
	// checkpoint stays valid.
	Checkpoint func(pos Position) error
	// CheckpointEvery is the checkpoint interval in steps (0: epoch ends only).
	CheckpointEvery int
}

// BatchInfo describes one committed step for Hooks.Batch.
type BatchInfo struct {
	Epoch       int // from 1
	StepInEpoch int // from 1
	EpochSteps  int // steps in an epoch
	Steps       int // steps done in the run, this one included
	Samples     int64
	// Result is the step's sums over its global batch (before its update).
	Result StepResult
	// Took is the step's wall time as the training loop measured it.
	Took time.Duration
	// Elapsed is the run's wall time so far.
	Elapsed   time.Duration
	WorldSize int
	// LR is the learning rate the step's update used (the schedule's).
	LR float64
}

// StepTimer is an Executor that measures the parts of its last step: the
// slowest worker's compute (forward and backward) and all-reduce time.
type StepTimer interface {
	LastStepTimes() (compute, allreduce time.Duration)
}

// Position is where a run stands in its schedule: with the parameters and
// optimizer state of the same moment, enough to resume the run exactly.
type Position struct {
	Epoch       int   // the epoch in progress, from 1
	StepInEpoch int   // steps of that epoch already done
	Steps       int   // steps done in the whole run
	Samples     int64 // samples trained in the whole run
	// Running sums of the epoch in progress.
	EpochLossSum float64
	EpochCorrect int
	EpochSeen    int
	// Records of the finished epochs.
	Records []report.EpochRecord
	// ElapsedSeconds is the run's wall time up to this position.
	ElapsedSeconds float64
}

// Result is what a run produced.
type Result struct {
	// StopReason says why training stopped (StopEpochs, StopSteps,
	// StopUntilLoss, StopPatience; "" when it failed or was interrupted).
	StopReason string
	// BestEpoch is the epoch with the lowest test loss (0: no test set).
	BestEpoch int
	Skipped   int // batches skipped for non-finite values
	Records   []report.EpochRecord
	Steps     int
	Samples   int64
	Wall      time.Duration // whole run, evaluations included
	TrainDur  time.Duration // steps only
}

// Run trains for the schedule from its start. See Resume.
func Run(ctx context.Context, exec Executor, train, test *data.Dataset, sched Schedule, hooks Hooks, log *slog.Logger, now func() time.Time) (*Result, error) {
	return Resume(ctx, exec, train, test, sched, Position{Epoch: 1}, hooks, log, now)
}

// Resume trains for the schedule from pos, the position of the state the
// executor holds. It evaluates the test set (if any) at every epoch end. A
// cancelled context stops it between steps with ctx's error and the result
// so far.
func Resume(ctx context.Context, exec Executor, train, test *data.Dataset, sched Schedule, pos Position, hooks Hooks, log *slog.Logger, now func() time.Time) (*Result, error) {
	if err := sched.Validate(); err != nil {
		return nil, err
	}
	if train == nil || train.Rows() == 0 {
		return nil, errors.New("the training set is empty")
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rows := train.Rows()
	steps := shard.Steps(rows, sched.Batch)
	if pos.Epoch < 1 || pos.StepInEpoch < 0 || pos.StepInEpoch > steps {
		return nil, fmt.Errorf("cannot resume at epoch %d step %d: an epoch has %d steps", pos.Epoch, pos.StepInEpoch, steps)
	}
	res := &Result{Steps: pos.Steps, Samples: pos.Samples, Records: append([]report.EpochRecord(nil), pos.Records...)}
	start := now().Add(-time.Duration(pos.ElapsedSeconds * float64(time.Second)))
	if p, ok := exec.(Preparer); ok {
		if err := p.Prepare(ctx); err != nil {
			res.Wall = now().Sub(start)
			return res, fmt.Errorf("prepare the first step: %w", err)
		}
	}
	checkpoint := func(p Position) {
		if hooks.Checkpoint == nil {
			return
		}
		p.Records = res.Records
		p.ElapsedSeconds = now().Sub(start).Seconds()
		if err := hooks.Checkpoint(p); err != nil {
			log.Error("checkpoint failed; training goes on, the previous checkpoint stays valid", "step", p.Steps, "err", err)
		}
	}
	if sched.Patience > 0 && (test == nil || test.Rows() == 0) {
		return nil, errors.New("patience (early stopping on the test loss) needs a test set")
	}
	stop := newStopper(sched)
	for _, rec := range res.Records { // a resumed run's earlier epochs
		if why := stop.observe(rec); why != "" {
			res.StopReason, res.BestEpoch = why, stop.bestEpoch
			return res, nil // it had stopped there already
		}
	}
	first := pos.StepInEpoch
	lossSum, correct, seen := pos.EpochLossSum, pos.EpochCorrect, pos.EpochSeen
	for epoch := pos.Epoch; epoch <= sched.Epochs; epoch++ {
		perm := sched.Permutation(epoch-1, rows)
		reached := first
		for s := first; s < steps; s++ {
			if sched.MaxSteps > 0 && res.Steps >= sched.MaxSteps {
				break
			}
			if err := ctx.Err(); err != nil {
				res.Wall = now().Sub(start)
				return res, err
			}
			batch := shard.Batch(perm, s, sched.Batch)
			lr := sched.LR.Rate(res.Steps)
			if hooks.LR != nil {
				hooks.LR(res.Steps, lr)
			}
			t0 := now()
			r, err := exec.Step(ctx, res.Steps, batch, lr)
			res.TrainDur += now().Sub(t0)
			if err != nil && sched.SkipNonFinite && errors.Is(err, model.ErrNonFinite) {
				res.Skipped++
				log.Warn("batch skipped: non-finite loss or gradient; no update applied", "epoch", epoch, "step", s+1, "err", err)
				reached = s + 1
				continue
			}
			if err != nil {
				res.Wall = now().Sub(start)
				return res, fmt.Errorf("epoch %d step %d: %w", epoch, s+1, err)
			}
			res.Steps++
			res.Samples += int64(r.Count)
			lossSum += r.LossSum
			correct += r.Correct
			seen += r.Count
			reached = s + 1
			if hooks.Batch != nil {
				hooks.Batch(BatchInfo{Epoch: epoch, StepInEpoch: s + 1, EpochSteps: steps, Steps: res.Steps, Samples: res.Samples,
					Result: r, Took: now().Sub(t0), Elapsed: now().Sub(start), WorldSize: exec.WorldSize(), LR: lr})
			}
			if hooks.Step != nil {
				hooks.Step(epoch, s+1, steps, res.Samples, lossSum/float64(seen))
			}
			if hooks.CheckpointEvery > 0 && res.Steps%hooks.CheckpointEvery == 0 && s+1 < steps {
				checkpoint(Position{Epoch: epoch, StepInEpoch: s + 1, Steps: res.Steps, Samples: res.Samples,
					EpochLossSum: lossSum, EpochCorrect: correct, EpochSeen: seen})
			}
		}
		first = 0
		if seen == 0 {
			break
		}
		partial := reached < steps
		if partial {
			// Stopped by --steps inside the epoch: the checkpoint records the
			// true position, so that a longer run resumes mid-epoch; the
			// partial epoch is still evaluated and reported below.
			checkpoint(Position{Epoch: epoch, StepInEpoch: reached, Steps: res.Steps, Samples: res.Samples,
				EpochLossSum: lossSum, EpochCorrect: correct, EpochSeen: seen})
		}
		rec := report.EpochRecord{
			Epoch: epoch, Step: res.Steps, Samples: res.Samples,
			TrainLoss: lossSum / float64(seen), TrainAccuracy: float64(correct) / float64(seen),
		}
		if test != nil && test.Rows() > 0 {
			tl, tc, err := exec.Evaluate(ctx, test)
			if err != nil {
				res.Wall = now().Sub(start)
				return res, fmt.Errorf("evaluate test set after epoch %d: %w", epoch, err)
			}
			rec.TestLoss = tl / float64(test.Rows())
			rec.TestAccuracy = float64(tc) / float64(test.Rows())
		} else {
			rec.TestLoss, rec.TestAccuracy = math.NaN(), math.NaN()
		}
		rec.ElapsedSeconds = now().Sub(start).Seconds()
		res.Records = append(res.Records, rec)
		attrs := []any{"epoch", epoch, "step", res.Steps, "samples", res.Samples,
			"train_loss", rec.TrainLoss, "train_accuracy", rec.TrainAccuracy,
			"test_loss", rec.TestLoss, "test_accuracy", rec.TestAccuracy,
			"elapsed_seconds", rec.ElapsedSeconds, "world_size", exec.WorldSize()}
		if sched.LR.Base > 0 {
			attrs = append(attrs, "last_lr", sched.LR.Rate(res.Steps-1)) // of the epoch's last step
		}
		log.Info("epoch done", attrs...)
		why := stop.observe(rec)
		res.BestEpoch = stop.bestEpoch
		if hooks.Epoch != nil {
			hooks.Epoch(rec)
		}
		if partial {
			res.StopReason = StopSteps
			break
		}
		if why != "" {
			res.StopReason = why
			log.Info("converged: stopping", "reason", why, "epoch", epoch, "train_loss", rec.TrainLoss,
				"test_loss", rec.TestLoss, "best_epoch", stop.bestEpoch)
			checkpoint(Position{Epoch: epoch + 1, Steps: res.Steps, Samples: res.Samples})
			break
		}
		lossSum, correct, seen = 0, 0, 0
		checkpoint(Position{Epoch: epoch + 1, Steps: res.Steps, Samples: res.Samples})
		if sched.MaxSteps > 0 && res.Steps >= sched.MaxSteps {
			res.StopReason = StopSteps
			break
		}
	}
	if res.StopReason == "" {
		res.StopReason = StopEpochs
	}
	res.Wall = now().Sub(start)
	return res, nil
}
