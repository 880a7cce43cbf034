package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/ringtrain/ringtrain/pkg/checkpoint"
	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/engine"
	"github.com/ringtrain/ringtrain/pkg/metrics"
	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/report"
	"github.com/ringtrain/ringtrain/pkg/shard"
	"github.com/ringtrain/ringtrain/pkg/train"
)

// Output file names inside --out.
const (
	MetricsFile = "metrics.csv"
	// StepsFile has a row per training step (report.StepRecord).
	StepsFile = "steps.csv"
	CurveFile = "learning_curve.png"
	CurveSVG  = "learning_curve.svg"
	ModelFile = "model.safetensors"
	// BestModelFile holds the parameters of the epoch with the lowest test
	// loss (written when a test set is evaluated).
	BestModelFile = "model.best.safetensors"
	SummaryFile   = "summary.json"
)

// Prepared is a job ready to run: data loaded, network and optimizer built.
type Prepared struct {
	Config   Config
	Train    *data.Dataset
	Test     *data.Dataset
	Model    model.Config
	OptCfg   model.OptimizerConfig
	Schedule train.Schedule
	Net      *model.Network
	Opt      *model.Optimizer
	// Start is where training starts: the beginning, or the position of the
	// checkpoint the run resumes from.
	Start train.Position
	// ResumedFrom names the checkpoint file the run resumes from ("" for a
	// new run).
	ResumedFrom string
}

// ExactMaxBlocks is the number of exact-reduction blocks of the run's
// largest global batch (engine.MaxBlocks; 0 when the reduction is fast).
func (p *Prepared) ExactMaxBlocks() int {
	ex := p.Config.Exact()
	if !ex.On() {
		return 0
	}
	return engine.MaxBlocks(ex, p.Schedule.Batch, p.Train.Rows())
}

// CheckpointDir is the checkpoint directory inside --out.
func (p *Prepared) CheckpointDir() string { return filepath.Join(p.Config.Out, "checkpoints") }

// Prepare validates the configuration, loads the data, builds the network
// (from --seed, or from --init-from) and the optimizer, and makes sure the
// output directory is writable, all before any training.
func Prepare(cfg Config, log *slog.Logger) (*Prepared, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkWritable(cfg.Out); err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	trainSet, testSet, err := data.Load(cfg.Dataset, cfg.Test, data.Options{DataDir: cfg.DataDir, Seed: cfg.Seed, TestFraction: 0.2})
	if err != nil {
		return nil, fmt.Errorf("--dataset %s: %w", cfg.Dataset, err)
	}
	mc, err := cfg.ModelConfig(trainSet.Features, trainSet.Classes)
	if err != nil {
		return nil, err
	}
	oc, err := cfg.OptimizerConfig()
	if err != nil {
		return nil, err
	}
	sched, err := cfg.Schedule()
	if err != nil {
		return nil, err
	}
	if sched.LR, err = cfg.LRFor(trainSet.Rows(), sched); err != nil {
		return nil, err
	}
	net, err := model.New(mc, cfg.Seed)
	if err != nil {
		return nil, err
	}
	if cfg.InitFrom != "" {
		if err := net.LoadFile(cfg.InitFrom); err != nil {
			return nil, fmt.Errorf("--init-from: %w", err)
		}
	}
	opt, err := model.NewOptimizer(oc, len(net.Params))
	if err != nil {
		return nil, err
	}
	p := &Prepared{Config: cfg, Train: trainSet, Test: testSet, Model: mc, OptCfg: oc, Schedule: sched, Net: net, Opt: opt, Start: train.Position{Epoch: 1}}
	if err := p.resume(log); err != nil {
		return nil, err
	}
	return p, nil
}

// resume loads the newest valid checkpoint of an interrupted run in --out.
// The checkpoints of a completed run are removed so that they cannot be
// mistaken for the new run's.
func (p *Prepared) resume(log *slog.Logger) error {
	dir := p.CheckpointDir()
	c, path, err := checkpoint.LoadNewest(dir, p.OptCfg, len(p.Net.Params), log)
	if errors.Is(err, checkpoint.ErrNone) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	want := p.Config.Fingerprint(p.Model, p.OptCfg)
	done := c.Position.Epoch > p.Schedule.Epochs || (p.Schedule.MaxSteps > 0 && c.Position.Steps >= p.Schedule.MaxSteps)
	if !p.Config.Resume || done {
		log.Info("starting a new run; removing the previous run's checkpoints", "dir", dir, "previous_run_complete", done)
		return checkpoint.RemoveAll(dir)
	}
	if c.Fingerprint != want {
		return fmt.Errorf("--out %s holds checkpoints of an interrupted run with another configuration (%s); "+
			"resume it with the same flags, use another --out, or pass --resume=false to start anew",
			p.Config.Out, model.DiffStrings(c.Fingerprint, want))
	}
	copy(p.Net.Params, c.Params)
	p.Opt = c.Optimizer
	p.Start = c.Position
	p.ResumedFrom = path
	log.Info("resuming from checkpoint", "path", path, "epoch", c.Position.Epoch, "step_in_epoch", c.Position.StepInEpoch,
		"steps", c.Position.Steps, "optimizer_steps", c.Optimizer.Steps)
	return nil
}

// Env carries the process's injected dependencies.
type Env struct {
	Log    *slog.Logger
	Stderr io.Writer        // where the progress bar goes (drawn only on a terminal)
	Now    func() time.Time // clock
	// IsTerminal reports whether Stderr is a terminal; nil: never.
	IsTerminal func(io.Writer) bool
	// Metrics receives epoch and checkpoint figures (nil: none).
	Metrics *metrics.Coordinator
	// Watch sees the run as it goes (the dashboard; nil: none).
	Watch Watcher
}

// Watcher follows a run: its start, every step and epoch, checkpoints and
// the end. Its methods are called from the training loop's goroutine and
// must be quick.
type Watcher interface {
	// Start gives the configuration, the steps the schedule will run in
	// all (at most: early stopping may end it sooner) and the steps and
	// epochs already done by a resumed run.
	Start(info RunInfo)
	Step(report.StepRecord)
	Epoch(report.EpochRecord)
	Checkpoint(path string, steps int, err error)
	// Finish is called once with the summary (nil if none) and the error
	// the run ended with (nil: completed).
	Finish(sum *report.Summary, err error)
}

// RunInfo is what a Watcher learns at the start of a run.
type RunInfo struct {
	Config     map[string]string
	Network    string
	Params     int
	EpochSteps int
	TotalSteps int
	Epochs     int
	Batch      int
	// Steps and Records are what a resumed run had done.
	Steps   []report.StepRecord
	Records []report.EpochRecord
}

// Interrupted is the error Run returns when ctx was cancelled during
// training and the work done was saved: every output file, the model with
// the parameters reached, and the checkpoints (the newest attempt
// succeeded, or none was due yet). A rerun with --resume continues from
// Checkpoint. A cancelled run that could not save something returns another
// error, which says what was not saved.
type Interrupted struct {
	// Cause is context.Cause of the run's context.
	Cause error
	// Steps is the number of steps done when training stopped.
	Steps int
	// Checkpoint is the newest checkpoint of the run, the one a rerun
	// resumes from; "" when there is none yet (a rerun starts anew).
	Checkpoint string
	// CheckpointSteps is the steps done at Checkpoint.
	CheckpointSteps int
}

func (e *Interrupted) Error() string {
	return fmt.Sprintf("training interrupted after %d steps: %v", e.Steps, e.Cause)
}

func (e *Interrupted) Unwrap() error { return e.Cause }

// Run trains the prepared job with exec and writes the outputs. The network
// in p receives the final parameters. When ctx is cancelled the outputs of
// the work done so far are still written, and Run returns *Interrupted if
// they and the checkpoints were saved, or an error saying what was not.
func Run(ctx context.Context, p *Prepared, exec train.Executor, env Env) (sum *report.Summary, err error) {
	if env.Watch != nil {
		defer func() { env.Watch.Finish(sum, err) }()
	}
	return run(ctx, p, exec, env)
}

func run(ctx context.Context, p *Prepared, exec train.Executor, env Env) (*report.Summary, error) {
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Log == nil {
		env.Log = slog.New(slog.DiscardHandler)
	}
	out := p.Config.Out
	var hooks train.Hooks
	var progress *report.Progress
	if env.Stderr != nil && env.IsTerminal != nil && env.IsTerminal(env.Stderr) {
		progress = report.NewProgress(env.Stderr, env.Now)
		hooks.Step = func(epoch, step, steps int, samples int64, loss float64) {
			progress.Update(epoch, step, steps, samples, loss)
		}
	}
	records := append([]report.EpochRecord(nil), p.Start.Records...)
	stepRecs := resumedSteps(p, env.Log)
	epochSteps := shard.Steps(p.Train.Rows(), p.Schedule.Batch)
	total := epochSteps * p.Schedule.Epochs
	if p.Schedule.MaxSteps > 0 {
		total = min(total, p.Schedule.MaxSteps)
	}
	if env.Watch != nil {
		env.Watch.Start(RunInfo{Config: p.Config.Map(), Network: p.Model.String(), Params: len(p.Net.Params),
			EpochSteps: epochSteps, TotalSteps: total, Epochs: p.Schedule.Epochs, Batch: p.Schedule.Batch,
			Steps: stepRecs, Records: records})
	}
	timer, _ := exec.(train.StepTimer)
	hooks.Batch = func(b train.BatchInfo) {
		lr := b.LR
		if lr <= 0 {
			lr = p.OptCfg.LR
		}
		rec := report.StepRecord{Step: b.Steps, Epoch: b.Epoch, LR: lr, WorldSize: b.WorldSize,
			TrainLoss: math.NaN(), TrainAccuracy: math.NaN(), ComputeMS: math.NaN(), AllreduceMS: math.NaN(),
			ElapsedSeconds: b.Elapsed.Seconds()}
		if n := b.Result.Count; n > 0 {
			rec.TrainLoss, rec.TrainAccuracy = b.Result.LossSum/float64(n), float64(b.Result.Correct)/float64(n)
			if b.Took > 0 {
				rec.SamplesPerSecond = float64(n) / b.Took.Seconds()
			}
		}
		if timer != nil {
			c, a := timer.LastStepTimes()
			rec.ComputeMS, rec.AllreduceMS = float64(c)/1e6, float64(a)/1e6
		}
		stepRecs = append(stepRecs, rec)
		if env.Watch != nil {
			env.Watch.Step(rec)
		}
	}
	hooks.CheckpointEvery = p.Config.CheckpointEvery
	// The newest checkpoint and the error of the newest attempt (nil once a
	// later one succeeds): what an interrupted run reports.
	ckpt := savedCheckpoint{path: p.ResumedFrom, steps: p.Start.Steps}
	hooks.Checkpoint = func(pos train.Position) error {
		params, opt, err := exec.State(ctx)
		if err != nil {
			if ctx.Err() == nil {
				ckpt.fail(pos.Steps, err)
			} // else cut short by the interruption: the previous one stands
			return err
		}
		t0 := env.Now()
		path, err := checkpoint.Save(p.CheckpointDir(), &checkpoint.Checkpoint{
			Position: pos, Params: params, Optimizer: opt, Fingerprint: p.Config.Fingerprint(p.Model, p.OptCfg),
		}, p.Config.KeepCheckpoints)
		env.Metrics.Checkpoint(env.Now().Sub(t0), err)
		if err != nil {
			ckpt.fail(pos.Steps, err)
			if env.Watch != nil {
				env.Watch.Checkpoint("", pos.Steps, err)
			}
			return err
		}
		ckpt = savedCheckpoint{path: path, steps: pos.Steps}
		env.Log.Info("checkpoint written", "path", path, "steps", pos.Steps)
		if env.Watch != nil {
			env.Watch.Checkpoint(path, pos.Steps, nil)
		}
		return nil
	}
	// The best model follows early stopping's rule (train.Improves), so it
	// is the epoch summary.json names.
	bestLoss, haveBest := math.Inf(1), false
	for _, r := range records {
		if !math.IsNaN(r.TestLoss) && (!haveBest || train.Improves(r.TestLoss, bestLoss, p.Schedule.MinDelta)) {
			bestLoss, haveBest = r.TestLoss, true
		}
	}
	hooks.Epoch = func(rec report.EpochRecord) {
		if progress != nil {
			progress.Done()
		}
		records = append(records, rec)
		if !math.IsNaN(rec.TestLoss) && (!haveBest || train.Improves(rec.TestLoss, bestLoss, p.Schedule.MinDelta)) {
			bestLoss, haveBest = rec.TestLoss, true
			if err := saveBest(ctx, p, exec, rec); err != nil {
				env.Log.Error("cannot write the best model", "epoch", rec.Epoch, "err", err)
			}
		}
		env.Metrics.Epoch(rec.TrainLoss, rec.TrainAccuracy, rec.TestLoss, rec.TestAccuracy)
		if err := report.WriteMetricsCSV(filepath.Join(out, MetricsFile), records); err != nil {
			env.Log.Error("cannot write metrics", "err", err)
		}
		if err := report.WriteStepsCSV(filepath.Join(out, StepsFile), stepRecs); err != nil {
			env.Log.Error("cannot write the per-step metrics", "err", err)
		}
		if env.Watch != nil {
			env.Watch.Epoch(rec)
		}
	}
	env.Log.Info("training", "dataset", p.Config.Dataset, "train_rows", p.Train.Rows(), "test_rows", rows(p.Test),
		"network", p.Model.String(), "params", len(p.Net.Params), "optimizer", p.OptCfg.Kind.String(),
		"lr", p.OptCfg.LR, "lr_schedule", p.Config.LRSchedule, "batch", p.Schedule.Batch, "epochs", p.Schedule.Epochs, "kernel", p.Net.Kernel())
	res, runErr := train.Resume(ctx, exec, p.Train, p.Test, p.Schedule, p.Start, hooks, env.Log, env.Now)
	// A run that stopped with an error while ctx is cancelled was
	// interrupted (the error is ctx's, or a step's cut short by it).
	interrupted := runErr != nil && ctx.Err() != nil
	if progress != nil {
		progress.Done()
	}
	if res == nil {
		return nil, runErr
	}
	// The final parameters are fetched even when ctx was cancelled (SIGTERM),
	// so that the work done so far is saved.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	params, err := exec.Params(fctx)
	if err != nil && runErr == nil {
		return nil, fmt.Errorf("fetch final parameters: %w", err)
	}
	var notSaved []error
	if err == nil {
		copy(p.Net.Params, params)
	} else {
		// p.Net holds the parameters the run started from: a model file of
		// them would pass for the trained one.
		notSaved = append(notSaved, fmt.Errorf("%s not written: cannot fetch the final parameters: %w", ModelFile, err))
	}
	sum := summarize(p, res, exec.WorldSize())
	if werr := writeOutputs(p, records, stepRecs, sum, err == nil); werr != nil {
		notSaved = append(notSaved, fmt.Errorf("outputs in %s: %w", out, werr))
	} else {
		env.Log.Info("outputs written", "dir", out, "test_accuracy", sum.TestAccuracy, "samples_per_second", sum.SamplesPerSecond, "wall_seconds", sum.WallSeconds)
	}
	if !interrupted {
		return sum, errors.Join(append([]error{runErr}, notSaved...)...)
	}
	if ckpt.err != nil {
		from := "the start"
		if ckpt.path != "" {
			from = fmt.Sprintf("%s (step %d)", ckpt.path, ckpt.steps)
		}
		notSaved = append(notSaved, fmt.Errorf("the checkpoint at step %d was not saved (a rerun resumes from %s): %w", ckpt.errSteps, from, ckpt.err))
	}
	if len(notSaved) > 0 {
		return sum, fmt.Errorf("training stopped after %d steps (%v), and not saved: %w", res.Steps, context.Cause(ctx), errors.Join(notSaved...))
	}
	return sum, &Interrupted{Cause: context.Cause(ctx), Steps: res.Steps, Checkpoint: ckpt.path, CheckpointSteps: ckpt.steps}
}

// savedCheckpoint is the newest checkpoint of a run and the error of the
// newest attempt, if it failed.
type savedCheckpoint struct {
	path     string
	steps    int
	err      error
	errSteps int
}

func (c *savedCheckpoint) fail(steps int, err error) { c.err, c.errSteps = err, steps }

// saveBest writes the executor's current parameters, those of rec's epoch,
// to model.best.safetensors.
func saveBest(ctx context.Context, p *Prepared, exec train.Executor, rec report.EpochRecord) error {
	params, err := exec.Params(ctx)
	if err != nil {
		return err
	}
	net, err := model.New(p.Model, 0)
	if err != nil {
		return err
	}
	copy(net.Params, params)
	meta := map[string]string{"epoch": fmt.Sprint(rec.Epoch), "steps": fmt.Sprint(rec.Step),
		"test_loss": fmt.Sprint(rec.TestLoss), "test_accuracy": fmt.Sprint(rec.TestAccuracy)}
	return net.SaveFile(filepath.Join(p.Config.Out, BestModelFile), meta)
}

func summarize(p *Prepared, res *train.Result, world int) *report.Summary {
	s := &report.Summary{
		StopReason: res.StopReason, BestEpoch: res.BestEpoch,
		Epochs: len(res.Records), Steps: res.Steps, Samples: res.Samples,
		WallSeconds: res.Wall.Seconds(), WorldSize: world, Dataset: p.Config.Dataset, Config: p.Config.Map(),
		TestAccuracy: math.NaN(), TestLoss: math.NaN(), TrainLoss: math.NaN(), TrainAccuracy: math.NaN(),
	}
	if res.TrainDur > 0 {
		s.SamplesPerSecond = float64(res.Samples) / res.TrainDur.Seconds()
	}
	if n := len(res.Records); n > 0 {
		last := res.Records[n-1]
		s.TestAccuracy, s.TestLoss = last.TestAccuracy, last.TestLoss
		s.TrainLoss, s.TrainAccuracy = last.TrainLoss, last.TrainAccuracy
	}
	return s
}

// writeOutputs writes the output files; the model file only if withModel.
func writeOutputs(p *Prepared, records []report.EpochRecord, steps []report.StepRecord, sum *report.Summary, withModel bool) error {
	out := p.Config.Out
	var errs []error
	if err := report.WriteMetricsCSV(filepath.Join(out, MetricsFile), records); err != nil {
		errs = append(errs, err)
	}
	if err := report.WriteStepsCSV(filepath.Join(out, StepsFile), steps); err != nil {
		errs = append(errs, err)
	}
	if len(records) > 0 || len(steps) > 0 {
		title := fmt.Sprintf("%s: %s\n%s lr=%g batch=%d seed=%d", p.Config.Dataset, p.Model.String(), p.OptCfg.Kind, p.OptCfg.LR, p.Schedule.Batch, p.Config.Seed)
		for _, name := range []string{CurveFile, CurveSVG} {
			if err := report.PlotLearningCurve(filepath.Join(out, name), title, records, steps); err != nil {
				errs = append(errs, err)
			}
		}
	}
	meta := map[string]string{"epochs": fmt.Sprint(sum.Epochs), "steps": fmt.Sprint(sum.Steps)}
	for k, v := range p.Config.Map() {
		meta["ringtrain.flag."+k] = v
	}
	if withModel {
		if err := p.Net.SaveFile(filepath.Join(out, ModelFile), meta); err != nil {
			errs = append(errs, err)
		}
	}
	if err := report.WriteSummary(filepath.Join(out, SummaryFile), sum); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// resumedSteps returns the rows of steps.csv of the steps a resumed run
// had done before its checkpoint (none for a new run; a missing or
// unreadable file is logged and the curve starts at the checkpoint).
func resumedSteps(p *Prepared, log *slog.Logger) []report.StepRecord {
	if p.Start.Steps == 0 {
		return nil
	}
	recs, err := report.ReadStepsCSV(filepath.Join(p.Config.Out, StepsFile))
	if err != nil {
		log.Warn("cannot read the per-step metrics of the resumed run; steps.csv starts at the checkpoint", "err", err)
		return nil
	}
	n := 0
	for n < len(recs) && recs[n].Step <= p.Start.Steps {
		n++
	}
	return recs[:n]
}

// checkWritable creates dir if needed and proves a file can be created in it.
func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create output directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("output directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

func rows(d *data.Dataset) int {
	if d == nil {
		return 0
	}
	return d.Rows()
}
