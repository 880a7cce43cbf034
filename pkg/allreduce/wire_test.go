package allreduce_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
)

// runRanks runs AllReduce on every rank with its own config (cfgOf(r)).
func runRanks(t *testing.T, n int, cfgOf func(r int) allreduce.Config, bufs [][]float32) {
	t.Helper()
	ts := allreduce.NewInmemRing(n)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		wg.Go(func() {
			c := cfgOf(r)
			c.Rank, c.Size = r, n
			if _, errs[r] = allreduce.AllReduce(ctx, ts[r], c, bufs[r]); errs[r] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
}

func clone(bufs [][]float32) [][]float32 {
	out := make([][]float32, len(bufs))
	for i, b := range bufs {
		out[i] = append([]float32(nil), b...)
	}
	return out
}

// TestBF16Wire checks the bf16 wire: every rank ends with the same bits;
// the result is the sum within bfloat16 rounding (one rounding of at most
// half a bf16 ulp, 2^-9 relative, per hop: n of them on any element's
// path); the residuals carry what the roundings removed, so that
// result + sum of residuals equals the exact sum within float32 rounding
// (the tolerance of the f32 wire, a 100x tighter bound than bf16's, so the
// test fails if any residual is missing or wrong); and the Exact tail
// travels as float32, bit-identical to the f32 wire's result.
func TestBF16Wire(t *testing.T) {
	const exact = 3
	for _, n := range []int{2, 3, 5} {
		for _, l := range []int{exact, exact + 1, 2*n + 3, 1001, 40_007} {
			for _, fb := range []int{0, 12, 4000} {
				if fb == 12 && l > 2000 {
					continue
				}
				t.Run(fmt.Sprintf("n=%d/len=%d/frame=%d", n, l, fb), func(t *testing.T) {
					bufs, sum, abs := inputs(n, l, 7)
					f32 := clone(bufs)
					runRanks(t, n, func(int) allreduce.Config {
						return allreduce.Config{Generation: 1, Step: 2, FrameBytes: fb, Offset: 5, Exact: exact}
					}, f32)
					res := make([][]float32, n)
					for r := range res {
						res[r] = make([]float32, l)
						for i := range res[r] {
							res[r][i] = float32(math.NaN()) // must all be overwritten
						}
					}
					runRanks(t, n, func(r int) allreduce.Config {
						return allreduce.Config{Generation: 1, Step: 2, FrameBytes: fb, Offset: 5, Exact: exact,
							Wire: allreduce.WireBF16, Residual: res[r]}
					}, bufs)
					eps32 := float64(math.Nextafter32(1, 2) - 1)
					for i := range l {
						for r := 1; r < n; r++ {
							if math.Float32bits(bufs[r][i]) != math.Float32bits(bufs[0][i]) {
								t.Fatalf("element %d: rank %d has %g, rank 0 %g", i, r, bufs[r][i], bufs[0][i])
							}
						}
						got := float64(bufs[0][i])
						if i >= l-exact {
							if math.Float32bits(bufs[0][i]) != math.Float32bits(f32[0][i]) {
								t.Fatalf("exact element %d: %g on the bf16 wire, %g on the f32 wire", i, bufs[0][i], f32[0][i])
							}
							for r := range n {
								if res[r][i] != 0 {
									t.Fatalf("exact element %d: rank %d residual %g, want 0", i, r, res[r][i])
								}
							}
							continue
						}
						if d, tol := math.Abs(got-sum[i]), float64(n)*math.Pow(2, -8)*abs[i]+1e-30; !(d <= tol) {
							t.Fatalf("element %d: got %g, want %g (diff %g > bf16 tol %g)", i, got, sum[i], d, tol)
						}
						fed := got
						for r := range n {
							fed += float64(res[r][i])
						}
						if d, tol := math.Abs(fed-sum[i]), 2*float64(n)*eps32*abs[i]+1e-30; !(d <= tol) {
							t.Fatalf("element %d: result + residuals = %g, want %g (diff %g > f32 tol %g)", i, fed, sum[i], d, tol)
						}
					}
				})
			}
		}
	}
}

// TestBF16FramesStayWordSized checks that every bf16 payload is a multiple
// of 4 bytes (transports and the gRPC receiver require it) and half the
// f32 payload, padding aside.
func TestBF16FramesStayWordSized(t *testing.T) {
	for _, l := range []int{1, 2, 3, 7, 1001} {
		bufs, _, _ := inputs(2, l, 1)
		ts := allreduce.NewInmemRing(2)
		rec := &recorder{Transport: ts[0]}
		ts[0] = rec
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := allreduce.RunRing(ctx, ts, allreduce.Config{Wire: allreduce.WireBF16, FrameBytes: 40}, bufs)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range rec.lens {
			if n%4 != 0 || n > 24 {
				t.Fatalf("len %d: a frame of %d bytes (want a multiple of 4, at most 10 bf16 elements + 2 pad bytes)", l, n)
			}
		}
	}
}

type recorder struct {
	allreduce.Transport
	lens []int
}

func (r *recorder) Send(ctx context.Context, f *allreduce.Frame) error {
	r.lens = append(r.lens, f.PayloadLen())
	return r.Transport.Send(ctx, f)
}

// TestBucketOffsetsCannotMix: frames carry the bucket's offset in the
// step's buffer, so a rank in another bucket rejects them.
func TestBucketOffsetsCannotMix(t *testing.T) {
	bufs, _, _ := inputs(2, 64, 3)
	ts := allreduce.NewInmemRing(2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	for r, off := range []int{0, 64} {
		go func() {
			_, err := allreduce.AllReduce(ctx, ts[r], allreduce.Config{Rank: r, Size: 2, Offset: off}, bufs[r])
			errs <- err
			cancel()
		}()
	}
	var fe *allreduce.FrameError
	found := false
	for range 2 {
		if err := <-errs; err != nil && asFrameError(err, &fe) && fe.Field == "offset" {
			found = true
		}
	}
	if !found {
		t.Fatal("ranks in different buckets did not reject each other's frames by offset")
	}
}

func TestParseWire(t *testing.T) {
	for _, c := range []struct {
		in   string
		want allreduce.Wire
		ok   bool
	}{{"f32", allreduce.WireF32, true}, {"bf16", allreduce.WireBF16, true}, {"", allreduce.WireF32, true}, {"fp16", 0, false}} {
		got, err := allreduce.ParseWire(c.in)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("ParseWire(%q) = %v, %v", c.in, got, err)
		}
		if c.ok && c.in != "" && got.String() != c.in {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
}

func asFrameError(err error, fe **allreduce.FrameError) bool { return errors.As(err, fe) }
