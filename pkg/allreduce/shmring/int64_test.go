package shmring

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
	"github.com/ringtrain/ringtrain/pkg/allreduce/internal/ringtest"
)

// TestAllReduceInt64 runs int64 buffers over shared memory, with frames of
// one element, frames not a multiple of 8 bytes, payloads that wrap around
// the ring's end, and a ring one record fills; the sums are exact.
func TestAllReduceInt64(t *testing.T) {
	cases := []struct {
		frame, capacity int
	}{
		{8, 4096},            // one-element frames
		{1004, 4096},         // 125 elements, 1000 bytes: payloads wrap around the end
		{4000, 4096},         // one record fills the ring
		{12 << 10, 16 << 10}, // every other payload wraps
		{0, DefaultCapacity}, // 512 KiB frames
	}
	for n := 2; n <= 4; n++ {
		for _, l := range []int{1, n + 1, 1001, 100_003} {
			for _, c := range cases {
				if c.frame < 1000 && l > 2000 {
					continue
				}
				t.Run(fmt.Sprintf("n=%d/len=%d/frame=%d/cap=%d", n, l, c.frame, c.capacity), func(t *testing.T) {
					g := newRing(t, allShm(n), c.capacity)
					for i, gen := range []uint64{1, 1, 2} {
						bufs, sum := ringtest.Int64Buffers(n, l, uint64(i))
						cfg := allreduce.Config{Generation: gen, Step: 10 + uint64(i), FrameBytes: c.frame}
						ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
						_, err := allreduce.RunRing(ctx, g.connect(t, gen), cfg, bufs)
						cancel()
						if err != nil {
							t.Fatal(err)
						}
						for r := range bufs {
							for i := range sum {
								if bufs[r][i] != sum[i] {
									t.Fatalf("rank %d element %d: got %d, want %d", r, i, bufs[r][i], sum[i])
								}
							}
						}
					}
					if f := g.fallbacks.Load(); f != 0 {
						t.Fatalf("%d Connects used the fallback, want none", f)
					}
				})
			}
		}
	}
}

// TestSeparateProcessesInt64: ranks in their own processes sum int64
// buffers over each other's segments and get the in-memory ring's bits.
func TestSeparateProcessesInt64(t *testing.T) {
	const n, elems, frameBytes = 3, 300_007, 64<<10 + 4
	ps := startRanksElem(t, shmDir(t), n, elems, frameBytes, "int64")
	for r, got := range all(t, ps, "connect 1") {
		if got != "connected true true" {
			t.Fatalf("rank %d: %s", r, got)
		}
	}
	bufs := make([][]int64, n)
	for r := range bufs {
		bufs[r] = make([]int64, elems)
		fillRank64(bufs[r], r)
	}
	cfg := allreduce.Config{Generation: 1, FrameBytes: frameBytes}
	for step := range uint64(2) {
		cfg.Step = 1 + step
		if _, err := allreduce.RunRing(context.Background(), allreduce.NewInmemRing(n), cfg, bufs); err != nil {
			t.Fatal(err)
		}
	}
	want := fmt.Sprint(hashInt64(bufs[0]))
	for r, got := range all(t, ps, "run 1 2 20000") {
		if f := strings.Fields(got); len(f) != 3 || f[0] != "done" || f[2] != want {
			t.Fatalf("rank %d: %s; want done with hash %s", r, got, want)
		}
	}
}
