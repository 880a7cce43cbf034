package coordinator

import (
	"fmt"
	"testing"

	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/train"
)

// TestAccumulateAndScheduleMatchUnsplit trains 12 steps of 64 with a
// warmed-up cosine schedule, the reference being the single-process trainer
// computing each batch in one piece, and checks that --accumulate K (the
// single-process trainer, and 1, 2 and 3 workers each cutting its shard in
// K micro-batches) ends at the same parameters within float32 rounding.
//
// Tolerance: the micro-batch sums are added in another order than the
// unsplit sum (as the workers' shard sums are), about 1e-7 of each
// gradient; under SGD that stays near 1e-7 of the parameters' scale over 12
// steps, and 1e-6 is the bound of TestDistributedMatchesSingleProcess. A
// lost micro-batch, one counted twice or the wrong learning rate moves the
// parameters by far more: the same run with the constant rate differs by
// more than 1e-3 of their scale, which the test also checks, so the rate
// the workers apply is the scheduled one.
func TestAccumulateAndScheduleMatchUnsplit(t *testing.T) {
	const tol = 1e-6
	base := mnistSetup(t, model.OptimizerConfig{Kind: model.SGD, LR: 0.1}, 12)
	constant := base.reference(t)
	base.sched.LR = train.LRSchedule{Kind: train.LRCosine, Base: 0.1, TMax: 12, Warmup: 3}
	ref := base.reference(t)
	if d := maxRelDiff(ref, constant); d < 1e-3 {
		t.Fatalf("the scheduled run differs from the constant-rate run by only %.3g of the scale: the schedule is not applied", d)
	}
	tests := []struct {
		workers, k int
		bucket     int  // bucket cap in bytes (0: one bucket after backward)
		skipZero   bool // zero input columns off the wire
	}{
		{0, 3, 0, false}, // 0: the single-process trainer
		{1, 2, 0, false},
		{2, 3, 0, false},
		{3, 3, 0, false},
		{2, 1, 0, false},  // the schedule alone, over the ring
		{3, 64, 0, false}, // more micro-batches than a shard's 21 or 22 rows: one row per piece
		// Buckets leave during the last micro-batch's backward only.
		{2, 3, 1, false},
		{3, 2, 1 << 20, true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("workers=%d/accumulate=%d/bucket=%d/skipzero=%v", tc.workers, tc.k, tc.bucket, tc.skipZero), func(t *testing.T) {
			s := base
			s.accumulate, s.bucketBytes, s.skipZero = tc.k, tc.bucket, tc.skipZero
			var got []float32
			if tc.workers == 0 {
				got = s.reference(t)
			} else {
				got, _ = s.distributed(t, tc.workers, false)
			}
			d := maxRelDiff(ref, got)
			t.Logf("max |difference| / max |param| = %.3g", d)
			if d > tol {
				t.Fatalf("parameters differ from the unsplit single-process run by %.3g of their scale (tolerance %g)", d, tol)
			}
		})
	}
}
