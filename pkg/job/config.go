// Package job turns command-line flags into a validated training job and runs
// it: it loads the data, builds the network and optimizer, drives the
// training loop through an Executor (in-process or distributed) and writes
// the run's outputs (metrics.csv, learning_curve.png, model.safetensors,
// summary.json) into the output directory.
package job

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/linalg"
	"github.com/ringtrain/ringtrain/pkg/logging"
	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/shard"
	"github.com/ringtrain/ringtrain/pkg/train"
)

// Config holds the training flags shared by every way of running a job.
type Config struct {
	Dataset    string
	Test       string
	DataDir    string
	Hidden     IntList
	Activation string
	Output     string
	Loss       string
	Bias       bool
	Init       string
	Optimizer  string
	LR         float64
	Momentum   float64
	Batch      int
	Epochs     int
	Steps      int
	Seed       uint64
	Shuffle    string
	InitFrom   string
	Out        string
	LogFormat  string
	LogLevel   string
	// CheckpointEvery writes a checkpoint every this many steps (and at
	// every epoch end); 0: epoch ends only.
	CheckpointEvery int
	// KeepCheckpoints is how many of the newest checkpoints are kept.
	KeepCheckpoints int
	// Resume continues from the newest valid checkpoint in Out.
	Resume bool
	// OnNonFinite is "fail" or "skip": what a NaN or Inf in a batch's loss
	// or gradient does.
	OnNonFinite string
	// UntilLoss, Patience and MinDelta stop training when it has converged
	// (train.Schedule); MaxEpochs, when set, is the bound on the epochs
	// (the same as Epochs).
	UntilLoss float64
	Patience  int
	MinDelta  float64
	MaxEpochs int
	// WeightDecay and Nesterov refine the update rule (model.OptimizerConfig).
	WeightDecay float64
	Nesterov    bool
	// LRSchedule (constant, step, cosine), LRStepEpochs, LRGamma and
	// WarmupSteps give every step's learning rate (train.LRSchedule).
	LRSchedule   string
	LRStepEpochs int
	LRGamma      float64
	WarmupSteps  int
	// Accumulate is the micro-batches each step's batch (each worker's
	// shard) is computed in.
	Accumulate int
	// Reduction is "fast" (float32 sums, whose last bits depend on the
	// number of workers) or "exact" (fixed-point block sums: the same bits
	// for any number of workers, threads and failures); ExactBlock and
	// ExactFracBits configure exact (model.Exact).
	Reduction     string
	ExactBlock    int
	ExactFracBits int
}

// Defaults returns the configuration of the default job: MNIST 1 vs 2 with
// the 784-1000-1000-1 ReLU network of the peer comparison.
func Defaults() Config {
	return Config{
		Dataset: "mnist-1v2", Hidden: IntList{1000, 1000}, Activation: "relu",
		Bias: true, Init: "he", Optimizer: "sgd", LR: 0.1, Batch: 64, Epochs: 1,
		Seed: 1, Shuffle: "epoch", Out: "out", LogFormat: "text", LogLevel: "info",
		CheckpointEvery: 100, KeepCheckpoints: 3, Resume: true, OnNonFinite: "fail",
		LRSchedule: "constant", LRGamma: 0.1, Accumulate: 1,
		Reduction: "fast", ExactBlock: model.DefaultExactBlock, ExactFracBits: model.DefaultExactFracBits,
	}
}

// Bind registers the flags on fs with c's current values as defaults.
func (c *Config) Bind(fs *flag.FlagSet) {
	fs.StringVar(&c.Dataset, "dataset", c.Dataset, "training data: "+strings.Join(data.Names(), ", ")+", or csv:PATH")
	fs.StringVar(&c.Test, "test", c.Test, "separate test set csv:PATH (default: the data set's own test split)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory holding the MNIST IDX files to read instead of the embedded copy (for --dataset mnist)")
	fs.Var(&c.Hidden, "hidden", "comma-separated hidden layer widths, e.g. 1000,1000 (empty: no hidden layer)")
	fs.StringVar(&c.Activation, "activation", c.Activation, "hidden activation: identity, sigmoid, tanh, relu, leaky-relu, softmax")
	fs.StringVar(&c.Output, "output", c.Output, "output activation: identity, sigmoid, tanh, softmax, ... (default: softmax with --loss ce, else sigmoid)")
	fs.StringVar(&c.Loss, "loss", c.Loss, "loss: mse, bce (sigmoid output), ce (softmax output), hinge (default: ce for mnist, else bce)")
	fs.BoolVar(&c.Bias, "bias", c.Bias, "give every dense layer a bias")
	fs.StringVar(&c.Init, "init", c.Init, "weight initialization: uniform, xavier, he")
	fs.StringVar(&c.Optimizer, "optimizer", c.Optimizer, "update rule: sgd, momentum, adam")
	fs.Float64Var(&c.LR, "lr", c.LR, "learning rate")
	fs.Float64Var(&c.WeightDecay, "weight-decay", c.WeightDecay, "weight decay lambda: L2 for sgd and momentum, decoupled (AdamW) for adam, as PyTorch defines them")
	fs.BoolVar(&c.Nesterov, "nesterov", c.Nesterov, "Nesterov momentum (with --optimizer momentum)")
	fs.StringVar(&c.LRSchedule, "lr-schedule", c.LRSchedule, "learning-rate schedule, advanced every step: constant, step (x --lr-gamma every --lr-step-epochs epochs, PyTorch StepLR), cosine (to 0 over the run's steps, PyTorch CosineAnnealingLR)")
	fs.IntVar(&c.LRStepEpochs, "lr-step-epochs", c.LRStepEpochs, "with --lr-schedule step: epochs between decays")
	fs.Float64Var(&c.LRGamma, "lr-gamma", c.LRGamma, "with --lr-schedule step: the factor of each decay")
	fs.IntVar(&c.WarmupSteps, "warmup-steps", c.WarmupSteps, "linear warm-up: step s < N trains with the scheduled rate times (s+1)/N (0: none)")
	fs.IntVar(&c.Accumulate, "accumulate", c.Accumulate, "compute each step's batch (each worker's shard) in this many micro-batches, adding their gradients before the one update; memory is that of one micro-batch")
	fs.StringVar(&c.Reduction, "reduction", c.Reduction, "how gradients are summed over samples and workers: fast (float32: the last bits depend on the number of workers) or exact (fixed-point sums of blocks of --exact-block samples: bit-identical results for any number of workers, threads and failures)")
	fs.IntVar(&c.ExactBlock, "exact-block", c.ExactBlock, "with --reduction exact: samples per block, summed in float32 before the exact fixed-point sum; shards are whole blocks, so at most ceil(batch/block) workers get work")
	fs.IntVar(&c.ExactFracBits, "exact-frac-bits", c.ExactFracBits, "with --reduction exact: fractional bits of the fixed-point sums (resolution 2^-N; fewer bits give more range)")
	fs.Float64Var(&c.Momentum, "momentum", c.Momentum, "momentum coefficient (with --optimizer sgd, > 0 selects momentum; default 0.9 for momentum)")
	fs.IntVar(&c.Batch, "batch", c.Batch, "global mini-batch size (0: full batch, 1: single sample)")
	fs.IntVar(&c.Epochs, "epochs", c.Epochs, "epochs to train (the bound when a stopping criterion is set)")
	fs.IntVar(&c.MaxEpochs, "max-epochs", c.MaxEpochs, "the bound on the epochs, the same as --epochs (0: --epochs)")
	fs.Float64Var(&c.UntilLoss, "until-loss", c.UntilLoss, "stop after an epoch whose training loss is below this (0: off)")
	fs.IntVar(&c.Patience, "patience", c.Patience, "early stopping: stop once the test loss has not improved by more than --min-delta for this many epochs (0: off)")
	fs.Float64Var(&c.MinDelta, "min-delta", c.MinDelta, "the least decrease of the test loss that counts as an improvement for --patience")
	fs.IntVar(&c.Steps, "steps", c.Steps, "stop after this many steps in all (0: no limit)")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "seed of initialization, data split and shuffling")
	fs.StringVar(&c.Shuffle, "shuffle", c.Shuffle, "batches: epoch (reshuffle every epoch) or once (draw once, reuse)")
	fs.StringVar(&c.InitFrom, "init-from", c.InitFrom, "start from the parameters of this .safetensors file")
	fs.StringVar(&c.Out, "out", c.Out, "output directory (created if missing)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn, error")
	fs.IntVar(&c.CheckpointEvery, "checkpoint-every", c.CheckpointEvery, "write a checkpoint into OUT/checkpoints every this many steps, and at every epoch end (0: epoch ends only)")
	fs.IntVar(&c.KeepCheckpoints, "keep-checkpoints", c.KeepCheckpoints, "how many of the newest checkpoints to keep")
	fs.StringVar(&c.OnNonFinite, "on-nonfinite", c.OnNonFinite, "a NaN or Inf in a batch's loss or gradient: fail (stop the run, naming worker and step) or skip (drop the batch, no update)")
	fs.BoolVar(&c.Resume, "resume", c.Resume, "continue an interrupted run from the newest valid checkpoint in --out (a completed run starts anew)")
}

// Validate checks every flag that can be checked without the data and names
// the flag at fault.
func (c *Config) Validate() error {
	var errs []error
	bad := func(flagName, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flagName, fmt.Sprintf(format, args...)))
	}
	if c.Dataset == "" {
		bad("dataset", "must name a data set")
	} else if !strings.HasPrefix(c.Dataset, "csv:") && !contains(data.Names(), c.Dataset) {
		bad("dataset", "unknown data set %q (want %s, or csv:PATH)", c.Dataset, strings.Join(data.Names(), ", "))
	}
	if c.Test != "" && !strings.HasPrefix(c.Test, "csv:") {
		bad("test", "must be csv:PATH, got %q", c.Test)
	}
	for i, h := range c.Hidden {
		if h <= 0 {
			bad("hidden", "layer %d has width %d; widths must be positive", i+1, h)
		}
	}
	if _, err := model.ParseActivation(c.Activation); err != nil {
		bad("activation", "%v", err)
	}
	if _, err := model.ParseActivation(c.OutputName()); err != nil {
		bad("output", "%v", err)
	}
	if _, err := model.ParseLoss(c.LossName()); err != nil {
		bad("loss", "%v", err)
	}
	if _, err := model.ParseInit(c.Init); err != nil {
		bad("init", "%v", err)
	}
	if _, err := model.ParseOptimizer(c.Optimizer); err != nil {
		bad("optimizer", "%v", err)
	}
	if !(c.LR > 0) || math.IsInf(c.LR, 0) {
		bad("lr", "must be a positive number, got %v", c.LR)
	}
	if c.Momentum < 0 || c.Momentum >= 1 || math.IsNaN(c.Momentum) {
		bad("momentum", "must be in [0, 1), got %v", c.Momentum)
	}
	if c.Batch < 0 {
		bad("batch", "must be 0 (full batch) or positive, got %d", c.Batch)
	}
	if kind, err := train.ParseLRKind(c.LRSchedule); err != nil {
		bad("lr-schedule", "%v", err)
	} else if kind == train.LRStep {
		if c.LRStepEpochs < 1 {
			bad("lr-step-epochs", "must be at least 1 with --lr-schedule step, got %d", c.LRStepEpochs)
		}
		if !(c.LRGamma > 0) || math.IsInf(c.LRGamma, 0) {
			bad("lr-gamma", "must be a positive number, got %v", c.LRGamma)
		}
	}
	if c.LRStepEpochs < 0 {
		bad("lr-step-epochs", "must be 0 or positive, got %d", c.LRStepEpochs)
	}
	if c.WarmupSteps < 0 {
		bad("warmup-steps", "must be 0 (no warm-up) or positive, got %d", c.WarmupSteps)
	}
	if c.Accumulate < 1 {
		bad("accumulate", "must be at least 1, got %d", c.Accumulate)
	} else if c.Batch > 0 && c.Accumulate > c.Batch {
		bad("accumulate", "%d micro-batches cannot be cut from a batch of %d (--batch)", c.Accumulate, c.Batch)
	}
	switch c.Reduction {
	case "fast", "exact":
	default:
		bad("reduction", "must be fast or exact, got %q", c.Reduction)
	}
	if c.ExactBlock < 1 {
		bad("exact-block", "must be at least 1 sample, got %d", c.ExactBlock)
	}
	if c.ExactFracBits < 0 || c.ExactFracBits > linalg.MaxFracBits {
		bad("exact-frac-bits", "must be 0..%d, got %d", linalg.MaxFracBits, c.ExactFracBits)
	}
	if c.MaxEpochs < 0 {
		bad("max-epochs", "must be 0 (use --epochs) or positive, got %d", c.MaxEpochs)
	}
	if c.UntilLoss < 0 || math.IsNaN(c.UntilLoss) || math.IsInf(c.UntilLoss, 0) {
		bad("until-loss", "must be 0 (off) or a positive number, got %v", c.UntilLoss)
	}
	if c.Patience < 0 {
		bad("patience", "must be 0 (off) or positive, got %d", c.Patience)
	}
	if c.MinDelta < 0 || math.IsNaN(c.MinDelta) || math.IsInf(c.MinDelta, 0) {
		bad("min-delta", "must be 0 or a positive number, got %v", c.MinDelta)
	}
	if c.Epochs < 1 {
		bad("epochs", "must be at least 1, got %d", c.Epochs)
	}
	if c.Steps < 0 {
		bad("steps", "must be 0 (no limit) or positive, got %d", c.Steps)
	}
	if _, err := train.ParseShuffle(c.Shuffle); err != nil {
		bad("shuffle", "%v", err)
	}
	if c.Out == "" {
		bad("out", "must name a directory")
	}
	if c.CheckpointEvery < 0 {
		bad("checkpoint-every", "must be 0 (epoch ends only) or positive, got %d", c.CheckpointEvery)
	}
	if c.OnNonFinite != "fail" && c.OnNonFinite != "skip" {
		bad("on-nonfinite", "must be fail or skip, got %q", c.OnNonFinite)
	}
	if c.KeepCheckpoints < 1 {
		bad("keep-checkpoints", "must be at least 1, got %d", c.KeepCheckpoints)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log-format", "must be text or json, got %q", c.LogFormat)
	}
	if _, err := logging.ParseLevel(c.LogLevel); err != nil {
		bad("log-level", "%v", err)
	}
	if len(errs) == 0 {
		// Combinations, checked once every single value is known to parse.
		out, _ := model.ParseActivation(c.OutputName())
		loss, _ := model.ParseLoss(c.LossName())
		width := 1
		if loss == model.CrossEntropy {
			width = 2
		}
		if err := (model.Config{Inputs: 1, Hidden: c.Hidden, Outputs: width, Output: out, Loss: loss}).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--loss %s with --output %s: %w", c.LossName(), c.OutputName(), err))
		}
	}
	return errors.Join(errs...)
}

// LossName is --loss, or when it is not given the data set's default:
// softmax cross-entropy for the ten-digit mnist, binary cross-entropy
// (the lecture's) for everything else.
func (c *Config) LossName() string {
	switch {
	case c.Loss != "":
		return c.Loss
	case c.Dataset == "mnist":
		return "ce"
	}
	return "bce"
}

// OutputName is --output, or when it is not given softmax for the
// cross-entropy loss and sigmoid (the lecture's) otherwise.
func (c *Config) OutputName() string {
	switch {
	case c.Output != "":
		return c.Output
	case c.LossName() == "ce":
		return "softmax"
	}
	return "sigmoid"
}

// ModelConfig returns the network configuration for a data set with the
// given number of features and classes. Binary problems get one output unit
// unless the loss is softmax cross-entropy; K-class problems get K outputs.
func (c *Config) ModelConfig(features, classes int) (model.Config, error) {
	act, err := model.ParseActivation(c.Activation)
	if err != nil {
		return model.Config{}, fmt.Errorf("--activation: %w", err)
	}
	out, err := model.ParseActivation(c.OutputName())
	if err != nil {
		return model.Config{}, fmt.Errorf("--output: %w", err)
	}
	loss, err := model.ParseLoss(c.LossName())
	if err != nil {
		return model.Config{}, fmt.Errorf("--loss: %w", err)
	}
	init, err := model.ParseInit(c.Init)
	if err != nil {
		return model.Config{}, fmt.Errorf("--init: %w", err)
	}
	outputs := classes
	if classes == 2 && loss != model.CrossEntropy {
		outputs = 1
	}
	if classes > 2 && (loss == model.BCE || loss == model.Hinge) {
		return model.Config{}, fmt.Errorf("--loss %s is binary but the data set has %d classes; use --loss ce --output softmax (or mse)", c.LossName(), classes)
	}
	mc := model.Config{
		Inputs: features, Hidden: append([]int(nil), c.Hidden...), Outputs: outputs,
		Activation: act, Output: out, Loss: loss, Bias: c.Bias, Init: init,
	}
	if err := mc.Validate(); err != nil {
		return model.Config{}, fmt.Errorf("--loss %s with --output %s on %d classes: %w", c.LossName(), c.OutputName(), classes, err)
	}
	return mc, nil
}

// Exact returns the exact-reduction configuration: zero (off) unless
// --reduction exact.
func (c *Config) Exact() model.Exact {
	if c.Reduction != "exact" {
		return model.Exact{}
	}
	return model.Exact{Block: c.ExactBlock, FracBits: c.ExactFracBits}
}

// OptimizerConfig returns the update rule's configuration.
func (c *Config) OptimizerConfig() (model.OptimizerConfig, error) {
	kind, err := model.ParseOptimizer(c.Optimizer)
	if err != nil {
		return model.OptimizerConfig{}, fmt.Errorf("--optimizer: %w", err)
	}
	oc := model.OptimizerConfig{Kind: kind, LR: c.LR, Momentum: c.Momentum, WeightDecay: c.WeightDecay, Nesterov: c.Nesterov}.WithDefaults()
	if err := oc.Validate(); err != nil {
		return oc, fmt.Errorf("optimizer flags: %w", err)
	}
	return oc, nil
}

// Schedule returns the batching schedule.
func (c *Config) Schedule() (train.Schedule, error) {
	mode, err := train.ParseShuffle(c.Shuffle)
	if err != nil {
		return train.Schedule{}, fmt.Errorf("--shuffle: %w", err)
	}
	epochs := c.Epochs
	if c.MaxEpochs > 0 {
		epochs = c.MaxEpochs
	}
	return train.Schedule{Epochs: epochs, MaxSteps: c.Steps, Batch: c.Batch, Shuffle: mode, Seed: c.Seed, SkipNonFinite: c.OnNonFinite == "skip",
		UntilLoss: c.UntilLoss, Patience: c.Patience, MinDelta: c.MinDelta}, nil
}

// LRFor returns the learning-rate schedule of a run on a training set
// of `rows` rows with the batching schedule sched: the step schedule's
// epochs become steps, and the cosine schedule's period is the steps of
// the whole run (the --epochs / --max-epochs bound, or --steps if that
// ends it sooner; a run stopped early by --until-loss or --patience never
// reaches the end of its period). It also checks that --accumulate fits
// the batch.
func (c *Config) LRFor(rows int, sched train.Schedule) (train.LRSchedule, error) {
	kind, err := train.ParseLRKind(c.LRSchedule)
	if err != nil {
		return train.LRSchedule{}, fmt.Errorf("--lr-schedule: %w", err)
	}
	perEpoch := shard.Steps(rows, sched.Batch)
	batch := sched.Batch
	if batch <= 0 || batch > rows {
		batch = rows
	}
	if c.Accumulate > batch {
		return train.LRSchedule{}, fmt.Errorf("--accumulate: %d micro-batches cannot be cut from a batch of %d rows", c.Accumulate, batch)
	}
	total := sched.Epochs * perEpoch
	if sched.MaxSteps > 0 {
		total = min(total, sched.MaxSteps)
	}
	l := train.LRSchedule{Kind: kind, Base: c.LR, Warmup: c.WarmupSteps}
	switch kind {
	case train.LRStep:
		l.StepSteps, l.Gamma = c.LRStepEpochs*perEpoch, c.LRGamma
	case train.LRCosine:
		l.TMax = total
	}
	if err := l.Validate(); err != nil {
		return train.LRSchedule{}, fmt.Errorf("--lr-schedule %s: %w", c.LRSchedule, err)
	}
	return l, nil
}

// Map returns the configuration as flag name -> value, for summary.json and
// model metadata.
func (c *Config) Map() map[string]string {
	return map[string]string{
		"dataset": c.Dataset, "test": c.Test, "hidden": c.Hidden.String(), "activation": c.Activation,
		"output": c.OutputName(), "loss": c.LossName(), "bias": strconv.FormatBool(c.Bias), "init": c.Init,
		"optimizer": c.Optimizer, "lr": strconv.FormatFloat(c.LR, 'g', -1, 64),
		"momentum": strconv.FormatFloat(c.Momentum, 'g', -1, 64), "batch": strconv.Itoa(c.Batch),
		"epochs": strconv.Itoa(c.Epochs), "steps": strconv.Itoa(c.Steps), "max_epochs": strconv.Itoa(c.MaxEpochs),
		"until_loss": strconv.FormatFloat(c.UntilLoss, 'g', -1, 64), "patience": strconv.Itoa(c.Patience),
		"min_delta":    strconv.FormatFloat(c.MinDelta, 'g', -1, 64),
		"weight_decay": strconv.FormatFloat(c.WeightDecay, 'g', -1, 64), "nesterov": strconv.FormatBool(c.Nesterov),
		"seed": strconv.FormatUint(c.Seed, 10), "shuffle": c.Shuffle, "init_from": c.InitFrom,
		"lr_schedule": c.LRSchedule, "lr_step_epochs": strconv.Itoa(c.LRStepEpochs),
		"lr_gamma": strconv.FormatFloat(c.LRGamma, 'g', -1, 64), "warmup_steps": strconv.Itoa(c.WarmupSteps),
		"accumulate": strconv.Itoa(c.Accumulate), "reduction": c.Reduction,
		"exact_block": strconv.Itoa(c.ExactBlock), "exact_frac_bits": strconv.Itoa(c.ExactFracBits),
	}
}

// Fingerprint identifies what a checkpoint can be resumed with: everything
// that shapes the trajectory except how long the run lasts.
func (c *Config) Fingerprint(mc model.Config, oc model.OptimizerConfig) string {
	fp := fmt.Sprintf("%s optimizer=%s lr=%g momentum=%g betas=%g,%g eps=%g dataset=%s test=%s batch=%d seed=%d shuffle=%s",
		mc, oc.Kind, oc.LR, oc.Momentum, oc.Beta1, oc.Beta2, oc.Eps, c.Dataset, c.Test, c.Batch, c.Seed, c.Shuffle)
	// Checkpoints of runs without these refinements keep their fingerprint.
	if oc.WeightDecay != 0 {
		fp += fmt.Sprintf(" weight_decay=%g", oc.WeightDecay)
	}
	if oc.Nesterov {
		fp += " nesterov=true"
	}
	switch c.LRSchedule {
	case "", "constant":
	case "step":
		fp += fmt.Sprintf(" lr_schedule=step lr_step_epochs=%d lr_gamma=%g", c.LRStepEpochs, c.LRGamma)
	default: // cosine: its period is the run's length
		fp += fmt.Sprintf(" lr_schedule=%s epochs=%d max_epochs=%d steps=%d", c.LRSchedule, c.Epochs, c.MaxEpochs, c.Steps)
	}
	if c.WarmupSteps > 0 {
		fp += fmt.Sprintf(" warmup_steps=%d", c.WarmupSteps)
	}
	if c.Accumulate > 1 {
		fp += fmt.Sprintf(" accumulate=%d", c.Accumulate)
	}
	if e := c.Exact(); e.On() {
		fp += fmt.Sprintf(" reduction=exact exact_block=%d exact_frac_bits=%d", e.Block, e.FracBits)
	}
	return fp
}

// IntList is a flag.Value holding comma-separated integers.
type IntList []int

// String implements flag.Value.
func (l *IntList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

// Set implements flag.Value.
func (l *IntList) Set(s string) error {
	*l = (*l)[:0]
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return nil
	}
	for _, part := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil {
			return fmt.Errorf("%q is not an integer", part)
		}
		if v <= 0 {
			return fmt.Errorf("width %d must be positive", v)
		}
		*l = append(*l, v)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
