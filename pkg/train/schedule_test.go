package train

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/ringtrain/ringtrain/pkg/report"
)

// TestLRScheduleRate checks Rate against rates computed by hand.
func TestLRScheduleRate(t *testing.T) {
	tests := []struct {
		name  string
		sched LRSchedule
		steps []int
		want  []float64
	}{
		{"constant", LRSchedule{Kind: LRConstant, Base: 0.1}, []int{0, 1, 1000}, []float64{0.1, 0.1, 0.1}},
		// StepLR(step_size=3, gamma=0.5): 1, 1, 1, 0.5, 0.5, 0.5, 0.25
		{"step", LRSchedule{Kind: LRStep, Base: 0.2, StepSteps: 3, Gamma: 0.5},
			[]int{0, 2, 3, 5, 6, 9}, []float64{0.2, 0.2, 0.1, 0.1, 0.05, 0.025}},
		// T_max = 4: factors (1+cos(pi t/4))/2 = 1, (1+0.7071)/2, 0.5, (1-0.7071)/2, 0; past T_max it stays at 0.
		{"cosine", LRSchedule{Kind: LRCosine, Base: 1, TMax: 4},
			[]int{0, 1, 2, 3, 4, 7}, []float64{1, 0.8535533905932737, 0.5, 0.14644660940672627, 0, 0}},
		// warm-up 4: (s+1)/4 for s < 4.
		{"constant warm-up", LRSchedule{Kind: LRConstant, Base: 0.8, Warmup: 4},
			[]int{0, 1, 2, 3, 4, 50}, []float64{0.2, 0.4, 0.6, 0.8, 0.8, 0.8}},
		// warm-up 2 times StepLR(step_size=2, gamma=0.1): 0.5*1, 1*1, 0.1, 0.1, 0.01.
		{"step warm-up", LRSchedule{Kind: LRStep, Base: 1, StepSteps: 2, Gamma: 0.1, Warmup: 2},
			[]int{0, 1, 2, 3, 4}, []float64{0.5, 1, 0.1, 0.1, 0.01}},
		// warm-up 2 times cosine T_max 2: 0.5*1, 1*0.5, 0.
		{"cosine warm-up", LRSchedule{Kind: LRCosine, Base: 2, TMax: 2, Warmup: 2},
			[]int{0, 1, 2}, []float64{1, 1, 0}},
		{"negative step is step 0", LRSchedule{Kind: LRConstant, Base: 0.3, Warmup: 3}, []int{-5}, []float64{0.1}},
		{"zero value", LRSchedule{}, []int{0, 9}, []float64{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, s := range tt.steps {
				if got := tt.sched.Rate(s); math.Abs(got-tt.want[i]) > 1e-15*math.Max(1, tt.want[i]) {
					t.Errorf("Rate(%d) = %.17g, want %.17g", s, got, tt.want[i])
				}
			}
		})
	}
}

func TestLRScheduleValidate(t *testing.T) {
	tests := []struct {
		sched LRSchedule
		want  string // "" = valid
	}{
		{LRSchedule{Kind: LRConstant, Base: 0.1}, ""},
		{LRSchedule{Kind: LRStep, Base: 0.1, StepSteps: 1, Gamma: 2}, ""},
		{LRSchedule{Kind: LRCosine, Base: 0.1, TMax: 1, Warmup: 5}, ""},
		{LRSchedule{Kind: LRConstant, Base: 0}, "positive number"},
		{LRSchedule{Kind: LRConstant, Base: math.Inf(1)}, "positive number"},
		{LRSchedule{Kind: LRConstant, Base: 0.1, Warmup: -1}, "warm-up"},
		{LRSchedule{Kind: LRStep, Base: 0.1, Gamma: 0.5}, "step size"},
		{LRSchedule{Kind: LRStep, Base: 0.1, StepSteps: 2}, "gamma"},
		{LRSchedule{Kind: LRCosine, Base: 0.1}, "period"},
		{LRSchedule{Kind: 7, Base: 0.1}, "unknown"},
	}
	for _, tt := range tests {
		err := tt.sched.Validate()
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: got %v, want %q", tt.sched, err, tt.want)
		}
	}
}

func TestParseLRKind(t *testing.T) {
	for _, k := range []LRKind{LRConstant, LRStep, LRCosine} {
		got, err := ParseLRKind(k.String())
		if err != nil || got != k {
			t.Errorf("ParseLRKind(%q) = %v, %v", k.String(), got, err)
		}
	}
	if _, err := ParseLRKind("exp"); err == nil || !strings.Contains(err.Error(), `"exp"`) {
		t.Errorf("ParseLRKind(exp): %v", err)
	}
}

// lrRecorder records the learning rate of every step it executes.
type lrRecorder struct {
	recorder
	rates map[int]float64
}

func (r *lrRecorder) Step(ctx context.Context, step int, batch []int, lr float64) (StepResult, error) {
	r.rates[step] = lr
	return r.recorder.Step(ctx, step, batch, lr)
}

// TestRunPassesRates: every step gets its scheduled rate, the LR hook sees
// the same, and a run resumed mid-way gives the remaining steps the rates
// of the uninterrupted run.
func TestRunPassesRates(t *testing.T) {
	tr := tinySet(10)
	sched := Schedule{Epochs: 3, Batch: 4, Seed: 1,
		LR: LRSchedule{Kind: LRCosine, Base: 0.5, TMax: 9, Warmup: 2}} // 3 steps an epoch
	full := &lrRecorder{rates: map[int]float64{}}
	hooked := map[int]float64{}
	if _, err := Run(context.Background(), full, tr, nil, sched, Hooks{LR: func(s int, lr float64) { hooked[s] = lr }}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if len(full.rates) != 9 {
		t.Fatalf("%d steps, want 9", len(full.rates))
	}
	for s := range 9 {
		if full.rates[s] != sched.LR.Rate(s) || hooked[s] != full.rates[s] {
			t.Errorf("step %d: executor got %v, hook %v, want %v", s, full.rates[s], hooked[s], sched.LR.Rate(s))
		}
	}
	resumed := &lrRecorder{rates: map[int]float64{}}
	pos := Position{Epoch: 2, StepInEpoch: 1, Steps: 4, Samples: 16, Records: []report.EpochRecord{{Epoch: 1}}}
	if _, err := Resume(context.Background(), resumed, tr, nil, sched, pos, Hooks{}, nil, nil); err != nil {
		t.Fatal(err)
	}
	for s := 4; s < 9; s++ {
		if resumed.rates[s] != full.rates[s] {
			t.Errorf("resumed step %d: rate %v, uninterrupted %v", s, resumed.rates[s], full.rates[s])
		}
	}
	if _, ok := resumed.rates[3]; ok {
		t.Error("the resumed run re-ran step 3")
	}
}
