package train

import (
	"fmt"
	"math"
)

// LRKind names a learning-rate schedule (--lr-schedule).
type LRKind int

// The learning-rate schedules, as PyTorch's torch.optim.lr_scheduler
// defines them (stepped once per training step).
const (
	// LRConstant keeps the base rate.
	LRConstant LRKind = iota
	// LRStep multiplies the rate by Gamma every StepSteps steps (StepLR).
	LRStep
	// LRCosine anneals the rate from the base to 0 over TMax steps
	// (CosineAnnealingLR with eta_min = 0).
	LRCosine
)

// ParseLRKind maps a command-line name to an LRKind.
func ParseLRKind(s string) (LRKind, error) {
	switch s {
	case "constant":
		return LRConstant, nil
	case "step":
		return LRStep, nil
	case "cosine":
		return LRCosine, nil
	}
	return 0, fmt.Errorf("unknown learning-rate schedule %q (want constant, step or cosine)", s)
}

// String returns the command-line name.
func (k LRKind) String() string {
	switch k {
	case LRStep:
		return "step"
	case LRCosine:
		return "cosine"
	}
	return "constant"
}

// LRSchedule is the learning rate as a pure function of the global step
// number (from 0 over the whole run): a resumed run, and every worker, get
// the same rate for the same step. The schedule advances once per training
// step, like a PyTorch scheduler whose step() is called after every
// optimizer.step():
//
//	rate(s) = Base * warm(s) * main(s)
//	warm(s) = (s+1)/Warmup for s < Warmup, else 1
//	main(s) = 1                                     constant
//	          Gamma^floor(s/StepSteps)              step    (StepLR(step_size=StepSteps, gamma))
//	          (1 + cos(pi * min(s,TMax)/TMax)) / 2  cosine  (CosineAnnealingLR(T_max=TMax, eta_min=0))
//
// warm is PyTorch's LinearLR(start_factor=1/Warmup, end_factor=1,
// total_iters=Warmup-1), chained with the main schedule by multiplication
// (ChainedScheduler): the first step trains with Base/Warmup, step
// Warmup-1 with the full rate. Both schedules count from step 0, so a
// warm-up does not shift the steps at which StepLR decays.
type LRSchedule struct {
	Kind LRKind
	Base float64 // the base learning rate (--lr)
	// StepSteps is StepLR's step_size in steps (--lr-step-epochs times the
	// steps of an epoch); Gamma its factor (--lr-gamma).
	StepSteps int
	Gamma     float64
	// TMax is the cosine schedule's period: the steps of the whole run.
	TMax int
	// Warmup is the number of linear warm-up steps (0: none).
	Warmup int
}

// Validate reports the first problem with the schedule.
func (l LRSchedule) Validate() error {
	switch {
	case !(l.Base > 0) || math.IsInf(l.Base, 0):
		return fmt.Errorf("base learning rate must be a positive number, got %v", l.Base)
	case l.Warmup < 0:
		return fmt.Errorf("warm-up steps must be 0 or positive, got %d", l.Warmup)
	case l.Kind == LRStep && l.StepSteps < 1:
		return fmt.Errorf("the step schedule needs a positive step size, got %d steps", l.StepSteps)
	case l.Kind == LRStep && (!(l.Gamma > 0) || math.IsInf(l.Gamma, 0)):
		return fmt.Errorf("the step schedule needs a positive gamma, got %v", l.Gamma)
	case l.Kind == LRCosine && l.TMax < 1:
		return fmt.Errorf("the cosine schedule needs a positive period, got %d steps", l.TMax)
	case l.Kind < LRConstant || l.Kind > LRCosine:
		return fmt.Errorf("unknown learning-rate schedule %d", l.Kind)
	}
	return nil
}

// Rate returns the learning rate of global step s (from 0).
func (l LRSchedule) Rate(s int) float64 {
	if s < 0 {
		s = 0
	}
	r := l.Base
	switch l.Kind {
	case LRStep:
		if l.StepSteps > 0 {
			r *= math.Pow(l.Gamma, float64(s/l.StepSteps))
		}
	case LRCosine:
		if l.TMax > 0 {
			t := min(s, l.TMax)
			r *= (1 + math.Cos(math.Pi*float64(t)/float64(l.TMax))) / 2
		}
	}
	if s < l.Warmup {
		r *= float64(s+1) / float64(l.Warmup)
	}
	return r
}

// String describes the schedule for logs.
func (l LRSchedule) String() string {
	s := fmt.Sprintf("%s lr=%g", l.Kind, l.Base)
	switch l.Kind {
	case LRStep:
		s += fmt.Sprintf(" step_size=%d gamma=%g", l.StepSteps, l.Gamma)
	case LRCosine:
		s += fmt.Sprintf(" t_max=%d", l.TMax)
	}
	if l.Warmup > 0 {
		s += fmt.Sprintf(" warmup=%d", l.Warmup)
	}
	return s
}
