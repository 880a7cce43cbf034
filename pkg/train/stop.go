package train

import (
	"math"

	"github.com/ringtrain/ringtrain/pkg/report"
)

// Why a run stopped (Result.StopReason, summary.json's stop_reason).
const (
	StopEpochs    = "epochs"     // the epoch bound (--epochs / --max-epochs) was reached
	StopSteps     = "steps"      // the step bound (--steps) was reached
	StopUntilLoss = "until-loss" // an epoch's training loss fell below --until-loss
	StopPatience  = "patience"   // the test loss stopped improving (--patience, --min-delta)
)

// stopper decides, epoch by epoch, whether training has converged: the
// lecture's "repeat until convergence". It is fed every finished epoch's
// record in order (also those of a resumed run's earlier epochs), so its
// decisions do not depend on where a run was interrupted.
type stopper struct {
	untilLoss float64 // stop once an epoch's train loss < untilLoss (0: off)
	patience  int     // stop after this many epochs without improvement (0: off)
	minDelta  float64 // an improvement must lower the test loss by more than this

	best      float64 // test loss of the best epoch
	bestEpoch int     // the best epoch (0: none yet)
	since     int     // epochs since the last improvement
}

func newStopper(s Schedule) *stopper {
	return &stopper{untilLoss: s.UntilLoss, patience: s.Patience, minDelta: s.MinDelta, best: math.Inf(1)}
}

// observe takes an epoch's record and returns the reason to stop after it
// ("" to go on). The best epoch is the last one whose test loss improved on
// the best so far by more than minDelta (the first evaluated epoch counts).
func (s *stopper) observe(rec report.EpochRecord) string {
	if !math.IsNaN(rec.TestLoss) {
		if s.bestEpoch == 0 || Improves(rec.TestLoss, s.best, s.minDelta) {
			s.best, s.bestEpoch, s.since = rec.TestLoss, rec.Epoch, 0
		} else {
			s.since++
		}
	}
	switch {
	case s.untilLoss > 0 && rec.TrainLoss < s.untilLoss:
		return StopUntilLoss
	case s.patience > 0 && s.since >= s.patience:
		return StopPatience
	}
	return ""
}

// Improves reports whether a test loss improves on the best so far by more
// than minDelta: the rule of early stopping and of the best model.
func Improves(loss, best, minDelta float64) bool { return loss < best-minDelta }
