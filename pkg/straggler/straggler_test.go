package straggler

import (
	"reflect"
	"testing"
	"time"
)

const ms = time.Millisecond

// steps repeats one step's compute times n times.
func steps(n int, c map[string]time.Duration) []map[string]time.Duration {
	out := make([]map[string]time.Duration, n)
	for i := range out {
		out[i] = c
	}
	return out
}

func concat(parts ...[]map[string]time.Duration) []map[string]time.Duration {
	var out []map[string]time.Duration
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestDetector(t *testing.T) {
	even3 := map[string]time.Duration{"a": 10 * ms, "b": 10 * ms, "c": 10 * ms}
	slowB := map[string]time.Duration{"a": 10 * ms, "b": 40 * ms, "c": 11 * ms}
	tests := []struct {
		name  string
		cfg   Config
		steps []map[string]time.Duration
		// want is every change, in order, as (step index, change).
		want      []stepChange
		finalSlow []string
	}{
		{
			name:  "balanced ring: nobody",
			cfg:   Config{Window: 5},
			steps: steps(20, even3),
		},
		{
			name:  "slow worker flagged once the window is full",
			cfg:   Config{Window: 5},
			steps: steps(8, slowB),
			want: []stepChange{{4, Change{Worker: "b", Straggler: true, Median: 40 * ms, Ring: 10500 * time.Microsecond,
				Ratio: 40.0 / 10.5, Window: 5}}},
			finalSlow: []string{"b"},
		},
		{
			name:  "two workers: the slow one is compared with the other",
			cfg:   Config{Window: 3},
			steps: steps(3, map[string]time.Duration{"a": 10 * ms, "b": 30 * ms}),
			want: []stepChange{{2, Change{Worker: "b", Straggler: true, Median: 30 * ms, Ring: 10 * ms,
				Ratio: 3, Window: 3}}},
			finalSlow: []string{"b"},
		},
		{
			name:  "one slow step in the window is not enough (median)",
			cfg:   Config{Window: 5},
			steps: concat(steps(4, even3), steps(1, slowB), steps(4, even3)),
		},
		{
			name:  "below the ratio: nobody",
			cfg:   Config{Window: 3, Ratio: 2, Margin: -1},
			steps: steps(5, map[string]time.Duration{"a": 10 * ms, "b": 19 * ms, "c": 10 * ms}),
		},
		{
			name:  "above the ratio but within the margin: nobody",
			cfg:   Config{Window: 3, Margin: 5 * ms},
			steps: steps(5, map[string]time.Duration{"a": 1 * ms, "b": 4 * ms, "c": 1 * ms}),
		},
		{
			name:  "recovers once the median falls back",
			cfg:   Config{Window: 3},
			steps: concat(steps(3, slowB), steps(3, even3)),
			want: []stepChange{
				{2, Change{Worker: "b", Straggler: true, Median: 40 * ms, Ring: 10500 * time.Microsecond, Ratio: 40.0 / 10.5, Window: 3}},
				{4, Change{Worker: "b", Straggler: false, Median: 10 * ms, Ring: 10 * ms, Ratio: 1, Window: 3}},
			},
		},
		{
			name: "a straggler that leaves the ring is cleared",
			cfg:  Config{Window: 2},
			steps: concat(steps(2, map[string]time.Duration{"a": 10 * ms, "b": 50 * ms}),
				steps(1, map[string]time.Duration{"a": 10 * ms})),
			want: []stepChange{
				{1, Change{Worker: "b", Straggler: true, Median: 50 * ms, Ring: 10 * ms, Ratio: 5, Window: 2}},
				{2, Change{Worker: "b", Straggler: false, Window: 2}},
			},
		},
		{
			name:  "a single worker has nobody to be compared with",
			cfg:   Config{Window: 2},
			steps: steps(5, map[string]time.Duration{"a": 100 * ms}),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var got []stepChange
			for i, s := range tc.steps {
				for _, c := range d.Observe(s) {
					got = append(got, stepChange{i, c})
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("changes:\n got %+v\nwant %+v", got, tc.want)
			}
			slow := d.Stragglers()
			if len(slow) == 0 {
				slow = nil
			}
			if !reflect.DeepEqual(slow, tc.finalSlow) {
				t.Errorf("Stragglers() = %v, want %v", slow, tc.finalSlow)
			}
		})
	}
}

type stepChange struct {
	step   int
	change Change
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg Config
		ok  bool
	}{
		{Config{}, true},
		{Config{Window: 10, Ratio: 1.2, Margin: time.Millisecond}, true},
		{Config{Window: -1}, false},
		{Config{Ratio: 1}, false},
		{Config{Ratio: 0.5}, false},
	}
	for _, tc := range tests {
		_, err := New(tc.cfg)
		if (err == nil) != tc.ok {
			t.Errorf("New(%+v) error %v, want ok=%v", tc.cfg, err, tc.ok)
		}
	}
}
