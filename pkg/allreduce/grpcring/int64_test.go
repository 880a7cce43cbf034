package grpcring_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
	"github.com/ringtrain/ringtrain/pkg/allreduce/grpcring"
	"github.com/ringtrain/ringtrain/pkg/allreduce/internal/ringtest"
)

// partsCounter records whether received payloads came in pieces cut
// inside an 8-byte element (informational: it depends on gRPC's buffers).
type partsCounter struct {
	allreduce.Transport
	frames, straddled int
}

func (p *partsCounter) Recv(ctx context.Context) (*allreduce.Frame, error) {
	f, err := p.Transport.Recv(ctx)
	if err == nil {
		p.frames++
		n := len(f.Data)
		for _, part := range f.Parts {
			if n%8 != 0 {
				p.straddled++
				break
			}
			n += len(part)
		}
	}
	return f, err
}

// TestRingOverGRPCInt64: int64 buffers over real gRPC (loopback TCP and
// local sockets, port 0) sum exactly, with frame sizes a multiple of 8 and
// not, and the byte counts are twice float32's for the same element count.
func TestRingOverGRPCInt64(t *testing.T) {
	for _, transport := range []string{"grpc", "grpc-local"} {
		for _, n := range []int{2, 3} {
			for _, fb := range []int{64 << 10, 1<<10 + 4} {
				t.Run(fmt.Sprintf("transport=%s/n=%d/frame=%d", transport, n, fb), func(t *testing.T) {
					l := 100_003
					if fb < 4096 {
						l = 10_001
					}
					opts := grpcring.Options{MaxFrameBytes: 64 << 10}
					if transport == "grpc-local" {
						opts.SocketDir = t.TempDir()
					}
					nodes := startNodesOn(t, n, opts, opts.SocketDir != "")
					order := make([]int, n)
					for i := range order {
						order[i] = i
					}
					ts := connect(t, nodes, order, 1)
					counters := make([]*partsCounter, n)
					for r := range ts {
						counters[r] = &partsCounter{Transport: ts[r]}
						ts[r] = counters[r]
					}
					for step := range uint64(2) {
						bufs, sum := ringtest.Int64Buffers(n, l, step)
						ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
						stats, err := allreduce.RunRing(ctx, ts, allreduce.Config{Generation: 1, Step: step, FrameBytes: fb}, bufs)
						cancel()
						if err != nil {
							t.Fatalf("step %d: %v", step, err)
						}
						for r := range bufs {
							for i := range sum {
								if bufs[r][i] != sum[i] {
									t.Fatalf("step %d rank %d element %d: got %d, want %d", step, r, i, bufs[r][i], sum[i])
								}
							}
						}
						ideal := 2 * float64(n-1) / float64(n) * 8 * float64(l)
						for r, st := range stats {
							if d := float64(st.BytesSent) - ideal; d > 0.02*ideal || d < -0.02*ideal {
								t.Errorf("rank %d sent %d bytes, want about %.0f", r, st.BytesSent, ideal)
							}
						}
					}
					var frames, straddled int
					for _, c := range counters {
						frames, straddled = frames+c.frames, straddled+c.straddled
					}
					t.Logf("%d of %d received frames had an element straddling two pieces", straddled, frames)
				})
			}
		}
	}
}
