package allreduce_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
	"github.com/ringtrain/ringtrain/pkg/shard"
)

// inputs returns n random buffers of length l (values in [-1, 1)) and their float64 sum.
func inputs(n, l int, seed uint64) ([][]float32, []float64, []float64) {
	rng := rand.New(rand.NewPCG(seed, uint64(n*1_000_003+l)))
	bufs := make([][]float32, n)
	sum := make([]float64, l)
	abs := make([]float64, l)
	for r := range bufs {
		bufs[r] = make([]float32, l)
		for i := range bufs[r] {
			v := rng.Float32()*2 - 1
			bufs[r][i] = v
			sum[i] += float64(v)
			abs[i] += math.Abs(float64(v))
		}
	}
	return bufs, sum, abs
}

// ringBytes is the exact payload a rank sends: the segments (r-t) mod n, t = 0..2n-3.
func ringBytes(rank, n, l int) int64 {
	if n == 1 {
		return 0
	}
	segs := shard.Split(l, n)
	var b int64
	for t := range 2 * (n - 1) {
		b += 4 * int64(segs[((rank-t)%n+n)%n].Len())
	}
	return b
}

func checkResult(t *testing.T, bufs [][]float32, sum, abs []float64) {
	t.Helper()
	n := len(bufs)
	for i := range sum {
		// Float32 rounding of a sum of n terms: at most about n ulps of the magnitude.
		tol := float64(n)*float64(math.Nextafter32(1, 2)-1)*abs[i] + 1e-30
		if d := math.Abs(float64(bufs[0][i]) - sum[i]); d > tol {
			t.Fatalf("element %d: got %g, want %g (diff %g > tol %g)", i, bufs[0][i], sum[i], d, tol)
		}
		for r := 1; r < n; r++ {
			if math.Float32bits(bufs[r][i]) != math.Float32bits(bufs[0][i]) {
				t.Fatalf("element %d: rank %d has %g, rank 0 has %g (not bit-identical)", i, r, bufs[r][i], bufs[0][i])
			}
		}
	}
}

func TestAllReduceInmem(t *testing.T) {
	frameSizes := []int{4, 10, 4000, 1 << 20, 0}
	for n := 1; n <= 8; n++ {
		lengths := []int{0, 1, n - 1, n, n + 1, 2*n + 3, 100_003}
		for _, l := range lengths {
			for _, fb := range frameSizes {
				if fb > 0 && fb < 4000 && l > 1000 {
					continue // one-element frames over a large buffer only cost time
				}
				t.Run(fmt.Sprintf("n=%d/len=%d/frame=%d", n, l, fb), func(t *testing.T) {
					bufs, sum, abs := inputs(n, l, 1)
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					cfg := allreduce.Config{Generation: 3, Step: 7, FrameBytes: fb}
					stats, err := allreduce.RunRing(ctx, allreduce.NewInmemRing(n), cfg, bufs)
					if err != nil {
						t.Fatal(err)
					}
					checkResult(t, bufs, sum, abs)
					for r, st := range stats {
						want := ringBytes(r, n, l)
						if st.BytesSent != want || st.BytesRecv != ringBytes((r+n-1)%n, n, l) {
							t.Errorf("rank %d: sent %d received %d bytes, want %d and %d", r, st.BytesSent, st.BytesRecv, want, ringBytes((r+n-1)%n, n, l))
						}
						if l >= 1000 {
							ideal := 2 * float64(n-1) / float64(n) * float64(4*l)
							if got := float64(st.BytesSent); math.Abs(got-ideal) > 0.02*ideal {
								t.Errorf("rank %d sent %d bytes, want 2(N-1)/N of the buffer = %.0f (within 2%%)", r, st.BytesSent, ideal)
							}
						}
					}
				})
			}
		}
	}
}

func TestAllReduceSizeOneIsNoop(t *testing.T) {
	buf := []float32{1, 2, 3}
	st, err := allreduce.AllReduce(context.Background(), nil, allreduce.Config{Rank: 0, Size: 1}, buf)
	if err != nil {
		t.Fatal(err)
	}
	if buf[0] != 1 || buf[1] != 2 || buf[2] != 3 || st.BytesSent != 0 || st.BytesRecv != 0 {
		t.Fatalf("size 1 changed the buffer or moved bytes: %v %+v", buf, st)
	}
}

func TestAllReduceBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  allreduce.Config
		want string
	}{
		{"rank too large", allreduce.Config{Rank: 2, Size: 2}, "rank 2 not in ring of size 2"},
		{"negative rank", allreduce.Config{Rank: -1, Size: 2}, "rank -1"},
		{"size 0", allreduce.Config{Rank: 0, Size: 0}, "size 0"},
		{"tiny frames", allreduce.Config{Rank: 0, Size: 2, FrameBytes: 3}, "frame size 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := allreduce.AllReduce(context.Background(), nil, tc.cfg, make([]float32, 4))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// tamper wraps a Transport and rewrites the k-th received frame (0-based).
type tamper struct {
	allreduce.Transport
	k      int
	n      int
	mutate func(*allreduce.Frame)
}

func (w *tamper) Recv(ctx context.Context) (*allreduce.Frame, error) {
	f, err := w.Transport.Recv(ctx)
	if err == nil && w.n == w.k {
		w.mutate(f)
	}
	w.n++
	return f, err
}

func TestAllReduceRejectsUnexpectedFrames(t *testing.T) {
	const n, l = 3, 30
	tests := []struct {
		field  string
		mutate func(*allreduce.Frame)
	}{
		{"generation", func(f *allreduce.Frame) { f.Generation-- }},
		{"step", func(f *allreduce.Frame) { f.Step++ }},
		{"round", func(f *allreduce.Frame) { f.Round++ }},
		{"seq", func(f *allreduce.Frame) { f.Seq++ }},
		{"offset", func(f *allreduce.Frame) { f.Offset += 1 }},
		{"length", func(f *allreduce.Frame) { f.Data = f.Data[:len(f.Data)-4] }},
		{"length", func(f *allreduce.Frame) { f.Data = append(f.Data, 0, 0, 0x80, 0x7f) }},
		{"length", func(f *allreduce.Frame) { f.Parts = append(f.Parts, []byte{0, 0}, []byte{0x80, 0x7f}) }},
	}
	for _, tc := range tests {
		t.Run(tc.field, func(t *testing.T) {
			bufs, _, _ := inputs(n, l, 2)
			orig := append([]float32(nil), bufs[0]...)
			ts := allreduce.NewInmemRing(n)
			// Rank 0's very first frame is bad: nothing may have been added to its buffer.
			ts[0] = &tamper{Transport: ts[0], k: 0, mutate: func(f *allreduce.Frame) {
				for i := range f.Data {
					f.Data[i] = 0x7f // would turn the sum into huge values / NaN if used
				}
				tc.mutate(f)
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := allreduce.RunRing(ctx, ts, allreduce.Config{Generation: 5, Step: 9, FrameBytes: 16}, bufs)
			var fe *allreduce.FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v, want a *FrameError", err)
			}
			if fe.Field != tc.field || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("rejected field %q (%v), want %q", fe.Field, err, tc.field)
			}
			for i := range orig {
				if math.Float32bits(bufs[0][i]) != math.Float32bits(orig[i]) {
					t.Fatalf("rank 0 element %d changed from %g to %g by a rejected frame", i, orig[i], bufs[0][i])
				}
			}
		})
	}
}

func TestAllReduceRejectsInAllGather(t *testing.T) {
	// A bad frame in the first all-gather round must be refused before it is copied.
	const n, l = 4, 40
	bufs, _, _ := inputs(n, l, 3)
	ts := allreduce.NewInmemRing(n)
	segs := shard.Split(l, n)
	var seg shard.Range
	ts[1] = &tamper{Transport: ts[1], k: n - 1, mutate: func(f *allreduce.Frame) {
		// Frames of 12 elements exceed a segment (10): one frame per round, so frame N-1 opens the all-gather.
		seg = segs[int(f.Offset)/10]
		f.Generation++
		for i := range f.Data {
			f.Data[i] = 0xff
		}
	}}
	_, err := allreduce.RunRing(context.Background(), ts, allreduce.Config{Generation: 1, Step: 1, FrameBytes: 48}, bufs)
	var fe *allreduce.FrameError
	if !errors.As(err, &fe) || fe.Field != "generation" || fe.Round != n-1 {
		t.Fatalf("error %v, want a generation FrameError in round %d", err, n-1)
	}
	for i := seg.Start; i < seg.End; i++ {
		if math.IsNaN(float64(bufs[1][i])) {
			t.Fatalf("rank 1 element %d is NaN: the rejected frame was copied", i)
		}
	}
}

// stuck is a neighbourhood where nobody ever sends: Recv and Send block until ctx ends.
type stuck struct{}

func (stuck) Send(ctx context.Context, _ *allreduce.Frame) error {
	<-ctx.Done()
	return ctx.Err()
}

func (stuck) Recv(ctx context.Context) (*allreduce.Frame, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestAllReduceCancellation(t *testing.T) {
	tests := []struct {
		name string
		tr   func() allreduce.Transport
	}{
		{"inmem ring with silent neighbours", func() allreduce.Transport { return allreduce.NewInmemRing(3)[0] }},
		{"transport that blocks both ways", func() allreduce.Transport { return stuck{} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := allreduce.AllReduce(ctx, tc.tr(), allreduce.Config{Rank: 0, Size: 3, FrameBytes: 16}, make([]float32, 1000))
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("error %v, want context.DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("returned after %v, long after the 50ms deadline", d)
			}
		})
	}
}

// failingSend fails every Send with a fixed error.
type failingSend struct{ allreduce.Transport }

var errLinkDown = errors.New("link down")

func (failingSend) Send(context.Context, *allreduce.Frame) error { return errLinkDown }

func TestAllReduceSendErrorIsReported(t *testing.T) {
	ts := allreduce.NewInmemRing(2)
	ts[0] = failingSend{ts[0]}
	_, err := allreduce.RunRing(context.Background(), ts, allreduce.Config{Step: 4}, [][]float32{make([]float32, 64), make([]float32, 64)})
	if !errors.Is(err, errLinkDown) || !strings.Contains(err.Error(), "send round 0 seq 0") {
		t.Fatalf("error %v, want the send error naming round 0 seq 0", err)
	}
}
