package allreduce_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
)

// TestFinalReportsEveryElementOnceWhenSummed: Config.Final reports each
// element of a rank's buffer exactly once, and when it does, the element
// already holds the value it ends with (checked against a copy taken in
// the callback), for float32 and int64, rings of 1 to 5, frames that cut
// segments into several pieces.
func TestFinalReportsEveryElementOnceWhenSummed(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5} {
		for _, l := range []int{0, 1, 7, 1000} {
			for _, fb := range []int{64, 0} {
				t.Run(fmt.Sprintf("n=%d/len=%d/frame=%d", n, l, fb), func(t *testing.T) {
					f32 := make([][]float32, n)
					i64 := make([][]int64, n)
					for r := range n {
						f32[r], i64[r] = make([]float32, l), make([]int64, l)
						for i := range l {
							f32[r][i], i64[r][i] = float32(r*l+i), int64(r*1000003+i)
						}
					}
					checkFinal(t, n, fb, f32)
					checkFinal(t, n, fb, i64)
				})
			}
		}
	}
}

func checkFinal[E allreduce.Element](t *testing.T, n, fb int, bufs [][]E) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts := allreduce.NewInmemRing(n)
	seen := make([][]int, n)
	snap := make([][]E, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		seen[r], snap[r] = make([]int, len(bufs[r])), make([]E, len(bufs[r]))
		wg.Go(func() {
			cfg := allreduce.Config{Rank: r, Size: n, Generation: 1, Step: 1, FrameBytes: fb, Final: func(lo, hi int) {
				for i := lo; i < hi; i++ {
					seen[r][i]++
				}
				copy(snap[r][lo:hi], bufs[r][lo:hi])
			}}
			_, errs[r] = allreduce.AllReduce(ctx, ts[r], cfg, bufs[r])
		})
	}
	wg.Wait()
	for r := range n {
		if errs[r] != nil {
			t.Fatal(errs[r])
		}
		for i, c := range seen[r] {
			if c != 1 {
				t.Fatalf("rank %d: element %d reported %d times, want once", r, i, c)
			}
		}
		if !slices.Equal(snap[r], bufs[r]) {
			t.Fatalf("rank %d: an element was reported before it held its sum", r)
		}
	}
}

func TestFinalRefusedWithBF16(t *testing.T) {
	_, err := allreduce.AllReduce(context.Background(), nil, allreduce.Config{Size: 1, Wire: allreduce.WireBF16, Final: func(int, int) {}}, []float32{1})
	if err == nil {
		t.Fatal("Final with the bf16 wire was accepted")
	}
}
