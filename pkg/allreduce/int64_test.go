package allreduce_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
	"github.com/ringtrain/ringtrain/pkg/shard"
)

// int64Inputs returns n buffers of length l whose elements are near ±2^62
// (sign·2^62 + noise up to 2^40) with as many plus as minus signs, give or
// take one, so that every total fits in an int64 while a run of two equal
// signs in ring order wraps the partial sum (2^62 + 2^62 = 2^63). A few
// elements are the extremes: MaxInt64 and MinInt64 against each other.
// It also returns the exact totals, computed with math/big.
func int64Inputs(t *testing.T, n, l int, seed uint64) ([][]int64, []int64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, uint64(n*1_000_003+l)))
	bufs := make([][]int64, n)
	for r := range bufs {
		bufs[r] = make([]int64, l)
	}
	sum := make([]int64, l)
	var tot, v big.Int
	for i := range l {
		signs := make([]int64, n)
		for r := range signs {
			signs[r] = int64(1 - 2*(r%2)) // +, -, +, -, ...
		}
		rng.Shuffle(n, func(a, b int) { signs[a], signs[b] = signs[b], signs[a] })
		tot.SetInt64(0)
		for r := range n {
			x := signs[r]*(1<<62) + rng.Int64N(1<<41) - 1<<40
			if i%17 == 5 { // the extremes: Max and Min alternate, the total stays within one of them
				x = math.MaxInt64
				if signs[r] < 0 {
					x = math.MinInt64
				}
			}
			bufs[r][i] = x
			tot.Add(&tot, v.SetInt64(x))
		}
		if !tot.IsInt64() {
			t.Fatalf("test data: element %d's total %v does not fit an int64", i, &tot)
		}
		sum[i] = tot.Int64()
	}
	return bufs, sum
}

// wraps reports whether some partial sum of buffer element i, taken in ring
// order from some rank, leaves the int64 range: the test data then really
// exercises wrapping intermediate sums.
func wraps(bufs [][]int64, i int) bool {
	n := len(bufs)
	var s, v big.Int
	for start := range n {
		s.SetInt64(0)
		for k := range n {
			s.Add(&s, v.SetInt64(bufs[(start+k)%n][i]))
			if !s.IsInt64() {
				return true
			}
		}
	}
	return false
}

func checkInt64(t *testing.T, bufs [][]int64, sum []int64) {
	t.Helper()
	for r := range bufs {
		for i := range sum {
			if bufs[r][i] != sum[i] {
				t.Fatalf("rank %d element %d: got %d, want %d (diff %d)", r, i, bufs[r][i], sum[i], bufs[r][i]-sum[i])
			}
		}
	}
}

// ringBytes64 is the exact payload a rank sends for an int64 buffer.
func ringBytes64(rank, n, l int) int64 { return 2 * ringBytes(rank, n, l) }

func TestAllReduceInt64Inmem(t *testing.T) {
	frameSizes := []int{8, 12, 20, 4004, 1 << 20, 0} // 12, 20, 4004: not multiples of 8
	for _, n := range []int{1, 2, 3, 5} {
		lengths := []int{0, 1, n - 1, n + 1, 2*n + 3, 1001, 100_003}
		for _, l := range lengths {
			for _, fb := range frameSizes {
				if fb > 0 && fb < 4000 && l > 2000 {
					continue // one-element frames over a large buffer only cost time
				}
				t.Run(fmt.Sprintf("n=%d/len=%d/frame=%d", n, l, fb), func(t *testing.T) {
					bufs, sum := int64Inputs(t, n, l, 1)
					wrapped := 0
					for i := range sum {
						if wraps(bufs, i) {
							wrapped++
						}
					}
					if n >= 3 && l >= 5 && wrapped == 0 {
						t.Fatal("test data: no element wraps a partial sum")
					}
					ts := allreduce.NewInmemRing(n)
					recs := make([]*recorder, n)
					for r := range ts {
						recs[r] = &recorder{Transport: ts[r]}
						ts[r] = recs[r]
					}
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					cfg := allreduce.Config{Generation: 3, Step: 7, FrameBytes: fb, Offset: 11}
					stats, err := allreduce.RunRing(ctx, ts, cfg, bufs)
					if err != nil {
						t.Fatal(err)
					}
					checkInt64(t, bufs, sum)
					maxFrame := fb &^ 7
					if fb == 0 {
						maxFrame = allreduce.DefaultFrameBytes
					}
					for r, st := range stats {
						want, wantRecv := ringBytes64(r, n, l), ringBytes64((r+n-1)%n, n, l)
						if st.BytesSent != want || st.BytesRecv != wantRecv {
							t.Errorf("rank %d: sent %d received %d bytes, want %d and %d", r, st.BytesSent, st.BytesRecv, want, wantRecv)
						}
						for _, b := range recs[r].lens {
							if b%8 != 0 || b > maxFrame || b == 0 {
								t.Fatalf("rank %d sent a frame of %d bytes: want a non-zero multiple of 8 up to %d", r, b, maxFrame)
							}
						}
					}
				})
			}
		}
	}
}

// splitter wraps a Transport and hands every received payload over as
// pieces cut at odd byte offsets (Data, then Parts), in a fresh buffer one
// byte off 8-byte alignment: what the gRPC transport does with its receive
// buffers.
type splitter struct {
	allreduce.Transport
	sizes []int
	out   allreduce.Frame
}

func (s *splitter) Recv(ctx context.Context) (*allreduce.Frame, error) {
	f, err := s.Transport.Recv(ctx)
	if err != nil {
		return f, err
	}
	b := append(make([]byte, 1, 1+f.PayloadLen()), f.Data...)[1:]
	for _, p := range f.Parts {
		b = append(b, p...)
	}
	s.out = *f
	s.out.Data, s.out.Parts = nil, nil
	for k := 0; len(b) > 0; k++ {
		n := min(s.sizes[k%len(s.sizes)], len(b))
		if k == 0 {
			s.out.Data = b[:n]
		} else {
			s.out.Parts = append(s.out.Parts, b[:n])
		}
		b = b[n:]
	}
	return &s.out, nil
}

func TestAllReduceInt64Pieces(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int
	}{
		{"odd pieces", []int{3, 5, 7, 13}},
		{"one byte pieces", []int{1}},
		{"an element over three pieces", []int{3, 2, 3}},
		{"long pieces cut inside elements", []int{1001, 77, 4093}},
		{"empty pieces", []int{0, 9, 0, 15}},
	}
	for _, tc := range tests {
		for _, n := range []int{2, 3, 5} {
			t.Run(fmt.Sprintf("%s/n=%d", tc.name, n), func(t *testing.T) {
				const l = 2001
				bufs, sum := int64Inputs(t, n, l, 4)
				ts := allreduce.NewInmemRing(n)
				for r := range ts {
					ts[r] = &splitter{Transport: ts[r], sizes: tc.sizes}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				if _, err := allreduce.RunRing(ctx, ts, allreduce.Config{Generation: 1, Step: 2, FrameBytes: 1000}, bufs); err != nil {
					t.Fatal(err)
				}
				checkInt64(t, bufs, sum)
			})
		}
	}
}

func TestAllReduceInt64RejectsBadLength(t *testing.T) {
	const n, l = 3, 30
	tests := []struct {
		name   string
		mutate func(*allreduce.Frame)
		got    uint64 // payload bytes received (frames of 2 elements: 16 bytes)
	}{
		{"half an element short", func(f *allreduce.Frame) { f.Data = f.Data[:len(f.Data)-4] }, 12},
		{"a float32 frame's length", func(f *allreduce.Frame) { f.Data = f.Data[:8] }, 8},
		{"one element too many", func(f *allreduce.Frame) { f.Data = append(f.Data, make([]byte, 8)...) }, 24},
		{"four bytes more in parts", func(f *allreduce.Frame) { f.Parts = append(f.Parts, []byte{1, 2}, []byte{3, 4}) }, 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bufs, _ := int64Inputs(t, n, l, 2)
			orig := append([]int64(nil), bufs[0]...)
			ts := allreduce.NewInmemRing(n)
			ts[0] = &tamper{Transport: ts[0], k: 0, mutate: func(f *allreduce.Frame) {
				for i := range f.Data {
					f.Data[i] = 0x7f
				}
				tc.mutate(f)
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := allreduce.RunRing(ctx, ts, allreduce.Config{Generation: 5, Step: 9, FrameBytes: 20}, bufs)
			var fe *allreduce.FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v, want a *FrameError", err)
			}
			if fe.Field != "length" || fe.Got != tc.got || fe.Want != 16 || fe.Round != 0 || fe.Seq != 0 {
				t.Fatalf("rejection %+v (%v), want length %d, want 16 in round 0 seq 0", fe, err, tc.got)
			}
			for i := range orig {
				if bufs[0][i] != orig[i] {
					t.Fatalf("rank 0 element %d changed from %d to %d by a rejected frame", i, orig[i], bufs[0][i])
				}
			}
		})
	}
}

func TestAllReduceInt64RejectsHeader(t *testing.T) {
	// Every header check is the element type's business as much as float32's;
	// the offset stays in elements.
	tests := []struct {
		field  string
		mutate func(*allreduce.Frame)
	}{
		{"generation", func(f *allreduce.Frame) { f.Generation++ }},
		{"step", func(f *allreduce.Frame) { f.Step-- }},
		{"round", func(f *allreduce.Frame) { f.Round++ }},
		{"seq", func(f *allreduce.Frame) { f.Seq++ }},
		{"offset", func(f *allreduce.Frame) { f.Offset *= 8 }}, // a byte offset is refused
	}
	for _, tc := range tests {
		t.Run(tc.field, func(t *testing.T) {
			const n, l = 3, 30
			bufs, _ := int64Inputs(t, n, l, 5)
			ts := allreduce.NewInmemRing(n)
			// Rank 1 receives segment 0 (offset Config.Offset = 4) first.
			ts[1] = &tamper{Transport: ts[1], k: 0, mutate: tc.mutate}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := allreduce.RunRing(ctx, ts, allreduce.Config{Generation: 5, Step: 9, FrameBytes: 24, Offset: 4}, bufs)
			var fe *allreduce.FrameError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("error %v, want a %s FrameError", err, tc.field)
			}
			if tc.field == "offset" && (fe.Want != 4 || fe.Got != 32) {
				t.Fatalf("offset rejection %+v, want got 32 (bytes), want 4 (elements)", fe)
			}
		})
	}
}

func TestAllReduceInt64Refusals(t *testing.T) {
	tests := []struct {
		name string
		cfg  allreduce.Config
		want string
	}{
		{"bf16 wire", allreduce.Config{Size: 2, Wire: allreduce.WireBF16}, "wire bf16"},
		{"residual", allreduce.Config{Size: 2, Residual: make([]float32, 4)}, "residual"},
		{"exact tail", allreduce.Config{Size: 2, Exact: 1}, "1 exact elements"},
		{"negative exact", allreduce.Config{Size: 2, Exact: -1}, "-1 exact elements"},
		{"frame smaller than an element", allreduce.Config{Size: 2, FrameBytes: 7}, "frame size 7 bytes is smaller than one int64"},
		{"float32-sized frame", allreduce.Config{Size: 2, FrameBytes: 4}, "smaller than one int64"},
		{"refused in a ring of one too", allreduce.Config{Size: 1, Wire: allreduce.WireBF16}, "int64"},
		{"rank", allreduce.Config{Rank: 3, Size: 2}, "rank 3 not in ring of size 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			buf := []int64{1, 2, 3, 4}
			_, err := allreduce.AllReduce(context.Background(), stuck{}, tc.cfg, buf)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if buf[0] != 1 || buf[3] != 4 {
				t.Fatalf("a refused call changed the buffer: %v", buf)
			}
		})
	}
}

func TestAllReduceInt64SizeOneIsNoop(t *testing.T) {
	buf := []int64{math.MaxInt64, math.MinInt64, -1}
	st, err := allreduce.AllReduce(context.Background(), nil, allreduce.Config{Rank: 0, Size: 1}, buf)
	if err != nil {
		t.Fatal(err)
	}
	if buf[0] != math.MaxInt64 || buf[1] != math.MinInt64 || buf[2] != -1 || st.BytesSent != 0 {
		t.Fatalf("size 1 changed the buffer or moved bytes: %v %+v", buf, st)
	}
}

// TestAllReduceInt64Buckets: a step's int64 buffer all-reduced in several
// buckets (Config.Offset) gives the sums of the whole.
func TestAllReduceInt64Buckets(t *testing.T) {
	const n, l = 3, 1003
	bufs, sum := int64Inputs(t, n, l, 6)
	for _, k := range shard.Split(l, 4) {
		part := make([][]int64, n)
		for r := range n {
			part[r] = bufs[r][k.Start:k.End]
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := allreduce.RunRing(ctx, allreduce.NewInmemRing(n), allreduce.Config{Generation: 1, Step: 1, FrameBytes: 800, Offset: k.Start}, part)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	checkInt64(t, bufs, sum)
}
