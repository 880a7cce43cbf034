package shard

import (
	"slices"
	"testing"
)

func TestPermutationIsPermutation(t *testing.T) {
	tests := []struct {
		name  string
		seed  uint64
		epoch int
		n     int
	}{
		{"n=0", 1, 0, 0},
		{"n=-3", 1, 0, -3},
		{"n=1", 1, 0, 1},
		{"n=2", 7, 3, 2},
		{"n=1000", 42, 0, 1000},
		{"n=12700 epoch 5", 42, 5, 12700},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Permutation(tc.seed, tc.epoch, tc.n)
			want := max(tc.n, 0)
			if len(p) != want {
				t.Fatalf("len = %d, want %d", len(p), want)
			}
			seen := make([]bool, want)
			for i, v := range p {
				if v < 0 || v >= want {
					t.Fatalf("perm[%d] = %d out of range [0,%d)", i, v, want)
				}
				if seen[v] {
					t.Fatalf("perm[%d] = %d appears twice", i, v)
				}
				seen[v] = true
			}
		})
	}
}

func TestPermutationDeterminism(t *testing.T) {
	const n = 500
	a := Permutation(9, 2, n)
	b := Permutation(9, 2, n)
	if !slices.Equal(a, b) {
		t.Fatal("same (seed, epoch, n) gave different permutations")
	}
	tests := []struct {
		name  string
		seed  uint64
		epoch int
	}{
		{"other epoch", 9, 3},
		{"other seed", 10, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if slices.Equal(a, Permutation(tc.seed, tc.epoch, n)) {
				t.Fatalf("seed %d epoch %d gave the same permutation as seed 9 epoch 2", tc.seed, tc.epoch)
			}
		})
	}
	identity := make([]int, n)
	for i := range identity {
		identity[i] = i
	}
	if slices.Equal(a, identity) {
		t.Fatal("permutation is the identity: not shuffled")
	}
}

func TestSteps(t *testing.T) {
	tests := []struct {
		n, batch, want int
	}{
		{0, 64, 0},
		{-1, 64, 0},
		{1, 64, 1},
		{64, 64, 1},
		{65, 64, 2},
		{128, 64, 2},
		{12700, 64, 199},
		{12700, 256, 50},
		{10, 0, 1},
		{10, -5, 1},
		{10, 100, 1},
		{10, 1, 10},
		{10, 3, 4},
	}
	for _, tc := range tests {
		if got := Steps(tc.n, tc.batch); got != tc.want {
			t.Errorf("Steps(%d, %d) = %d, want %d", tc.n, tc.batch, got, tc.want)
		}
	}
}

func TestBatchCoversEpoch(t *testing.T) {
	tests := []struct{ n, batch int }{
		{10, 3}, {10, 5}, {10, 10}, {10, 0}, {10, 11}, {1, 1}, {12700, 64}, {7, 1},
	}
	for _, tc := range tests {
		perm := Permutation(1, 0, tc.n)
		var got []int
		steps := Steps(tc.n, tc.batch)
		for s := range steps {
			b := Batch(perm, s, tc.batch)
			if tc.batch > 0 && len(b) > tc.batch {
				t.Errorf("n=%d batch=%d step %d: len %d > batch", tc.n, tc.batch, s, len(b))
			}
			if s < steps-1 && tc.batch > 0 && tc.batch < tc.n && len(b) != tc.batch {
				t.Errorf("n=%d batch=%d step %d: len %d, want full batch", tc.n, tc.batch, s, len(b))
			}
			got = append(got, b...)
		}
		if !slices.Equal(got, perm) {
			t.Errorf("n=%d batch=%d: concatenated batches differ from the permutation", tc.n, tc.batch)
		}
	}
}

func TestBatchLastShortAndNoCopy(t *testing.T) {
	perm := []int{5, 4, 3, 2, 1, 0, 9}
	b := Batch(perm, 2, 3)
	if !slices.Equal(b, []int{9}) {
		t.Fatalf("last batch = %v, want [9]", b)
	}
	if &b[0] != &perm[6] {
		t.Fatal("Batch copied instead of returning a sub-slice")
	}
	if cap(b) != len(b) {
		t.Fatalf("cap(batch) = %d, want %d (appending must not overwrite the next batch)", cap(b), len(b))
	}
}

func TestBatchOutOfRangePanics(t *testing.T) {
	tests := []struct{ n, step, batch int }{{10, 4, 3}, {10, -1, 3}, {10, 1, 0}, {0, 0, 5}}
	for _, tc := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Batch(n=%d, step=%d, batch=%d) did not panic", tc.n, tc.step, tc.batch)
				}
			}()
			Batch(make([]int, tc.n), tc.step, tc.batch)
		}()
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name       string
		n, workers int
		want       []Range
	}{
		{"even", 6, 3, []Range{{0, 2}, {2, 4}, {4, 6}}},
		{"uneven", 7, 3, []Range{{0, 3}, {3, 5}, {5, 7}}},
		{"uneven 2 extra", 8, 3, []Range{{0, 3}, {3, 6}, {6, 8}}},
		{"more workers than samples", 2, 4, []Range{{0, 1}, {1, 2}, {2, 2}, {2, 2}}},
		{"n=0", 0, 3, []Range{{0, 0}, {0, 0}, {0, 0}}},
		{"workers=1", 64, 1, []Range{{0, 64}}},
		{"workers=0", 64, 0, nil},
		{"negative n", -3, 2, []Range{{0, 0}, {0, 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Split(tc.n, tc.workers)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Split(%d, %d) = %v, want %v", tc.n, tc.workers, got, tc.want)
			}
		})
	}
}

func TestSplitProperties(t *testing.T) {
	for n := 0; n <= 70; n++ {
		for w := 1; w <= 9; w++ {
			rs := Split(n, w)
			if len(rs) != w {
				t.Fatalf("Split(%d,%d): %d ranges", n, w, len(rs))
			}
			next, lo, hi := 0, n, 0
			for i, r := range rs {
				if r.Start != next {
					t.Fatalf("Split(%d,%d)[%d] starts at %d, want %d (gap or overlap)", n, w, i, r.Start, next)
				}
				lo, hi = min(lo, r.Len()), max(hi, r.Len())
				next = r.End
			}
			if next != n {
				t.Fatalf("Split(%d,%d) covers [0,%d), want [0,%d)", n, w, next, n)
			}
			if hi-lo > 1 {
				t.Fatalf("Split(%d,%d) sizes range from %d to %d", n, w, lo, hi)
			}
		}
	}
}

func TestSplitBlocks(t *testing.T) {
	tests := []struct {
		n, workers, block int
		want              []Range
	}{
		{96, 2, 16, []Range{{0, 48}, {48, 96}}},
		{96, 5, 16, []Range{{0, 32}, {32, 48}, {48, 64}, {64, 80}, {80, 96}}},
		{100, 3, 16, []Range{{0, 48}, {48, 80}, {80, 100}}},
		{20, 3, 16, []Range{{0, 16}, {16, 20}, {20, 20}}},
		{7, 2, 1, Split(7, 2)},
		{0, 2, 16, []Range{{0, 0}, {0, 0}}},
	}
	for _, tc := range tests {
		got := SplitBlocks(tc.n, tc.workers, tc.block)
		if !slices.Equal(got, tc.want) {
			t.Errorf("SplitBlocks(%d, %d, %d) = %v, want %v", tc.n, tc.workers, tc.block, got, tc.want)
		}
		for _, r := range got {
			if r.Start%max(tc.block, 1) != 0 && r.Start != tc.n {
				t.Errorf("SplitBlocks(%d, %d, %d): shard %v does not start on a block boundary", tc.n, tc.workers, tc.block, r)
			}
		}
	}
}
