package grpcring_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
	"github.com/ringtrain/ringtrain/pkg/allreduce/grpcring"
	ringtrainv1 "github.com/ringtrain/ringtrain/proto/ringtrain/v1"
)

// node is one in-process worker: a gRPC server on 127.0.0.1:0 with a ring Service.
type node struct {
	addr string
	svc  *grpcring.Service
}

// startNodes starts n servers on loopback TCP; they are stopped when the test ends.
func startNodes(tb testing.TB, n int, opts grpcring.Options) []*node {
	tb.Helper()
	return startNodesOn(tb, n, opts, false)
}

// startNodesOn starts n servers on 127.0.0.1 (any port); with local set they
// also listen on their local sockets in opts.SocketDir.
func startNodesOn(tb testing.TB, n int, opts grpcring.Options, local bool) []*node {
	tb.Helper()
	nodes := make([]*node, n)
	for i := range nodes {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		target := lis.Addr().String()
		svc := grpcring.NewService(opts)
		srv := grpc.NewServer(svc.ServerOptions()...)
		svc.Register(srv)
		go func() { _ = srv.Serve(lis) }()
		if local {
			// Also serve on the local socket peers sharing SocketDir will use.
			local, err := svc.ListenLocal(target)
			if err != nil {
				tb.Fatal(err)
			}
			go func() { _ = srv.Serve(local) }()
		}
		tb.Cleanup(func() {
			_ = svc.Close()
			srv.Stop()
		})
		nodes[i] = &node{addr: target, svc: svc}
	}
	return nodes
}

// connect forms the ring nodes[order[0]] -> nodes[order[1]] -> ... for a generation
// and returns the transports in rank order.
func connect(tb testing.TB, nodes []*node, order []int, gen uint64) []allreduce.Transport {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts := make([]allreduce.Transport, len(order))
	for r, id := range order {
		right := nodes[order[(r+1)%len(order)]]
		tr, err := nodes[id].svc.Connect(ctx, right.addr, gen)
		if err != nil {
			tb.Fatalf("generation %d rank %d: %v", gen, r, err)
		}
		ts[r] = tr
	}
	return ts
}

func randomBufs(n, l int, seed uint64) ([][]float32, []float64) {
	rng := rand.New(rand.NewPCG(seed, uint64(l)))
	bufs := make([][]float32, n)
	sum := make([]float64, l)
	for r := range bufs {
		bufs[r] = make([]float32, l)
		for i := range bufs[r] {
			bufs[r][i] = rng.Float32()*2 - 1
			sum[i] += float64(bufs[r][i])
		}
	}
	return bufs, sum
}

func checkSums(t *testing.T, bufs [][]float32, sum []float64) {
	t.Helper()
	for i := range sum {
		if d := math.Abs(float64(bufs[0][i]) - sum[i]); d > 1e-5 {
			t.Fatalf("element %d: got %g, want %g", i, bufs[0][i], sum[i])
		}
		for r := 1; r < len(bufs); r++ {
			if math.Float32bits(bufs[r][i]) != math.Float32bits(bufs[0][i]) {
				t.Fatalf("element %d: rank %d has %g, rank 0 has %g", i, r, bufs[r][i], bufs[0][i])
			}
		}
	}
}

func TestRingOverGRPC(t *testing.T) {
	for _, n := range []int{2, 3, 4} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			const l = 300_007
			nodes := startNodes(t, n, grpcring.Options{MaxFrameBytes: 64 << 10})
			orders := [][]int{make([]int, n), make([]int, n)}
			for i := range n {
				orders[0][i] = i
				orders[1][i] = (n - 1 - i + 1) % n // reversed, starting at node 1: a different right neighbour for everyone when n > 2
			}
			for gen, order := range orders {
				ts := connect(t, nodes, order, uint64(gen+1))
				for step := range uint64(3) {
					bufs, sum := randomBufs(n, l, uint64(gen)*10+step)
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					stats, err := allreduce.RunRing(ctx, ts, allreduce.Config{Generation: uint64(gen + 1), Step: step, FrameBytes: 64 << 10}, bufs)
					cancel()
					if err != nil {
						t.Fatalf("generation %d step %d: %v", gen+1, step, err)
					}
					checkSums(t, bufs, sum)
					ideal := 2 * float64(n-1) / float64(n) * 4 * l
					for r, st := range stats {
						if math.Abs(float64(st.BytesSent)-ideal) > 0.02*ideal || math.Abs(float64(st.BytesRecv)-ideal) > 0.02*ideal {
							t.Errorf("rank %d sent %d received %d bytes, want about %.0f", r, st.BytesSent, st.BytesRecv, ideal)
						}
					}
				}
			}
		})
	}
}

func TestStaleGenerationIsDropped(t *testing.T) {
	// An aborted step leaves frames of generation 1 in flight; generation 2 must ignore them.
	nodes := startNodes(t, 2, grpcring.Options{})
	ts := connect(t, nodes, []int{0, 1}, 1)
	ctx := context.Background()
	for seq := range uint32(3) {
		if err := ts[0].Send(ctx, &allreduce.Frame{Generation: 1, Step: 5, Seq: seq, Data: make([]byte, 8)}); err != nil {
			t.Fatal(err)
		}
	}
	ts = connect(t, nodes, []int{0, 1}, 2)
	bufs, sum := randomBufs(2, 1000, 9)
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := allreduce.RunRing(rctx, ts, allreduce.Config{Generation: 2, Step: 5}, bufs); err != nil {
		t.Fatal(err)
	}
	checkSums(t, bufs, sum)
}

func TestNewerGenerationIsRejected(t *testing.T) {
	nodes := startNodes(t, 2, grpcring.Options{})
	ts := connect(t, nodes, []int{0, 1}, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts[0].Send(ctx, &allreduce.Frame{Generation: 2, Data: make([]byte, 8)}); err != nil {
		t.Fatal(err)
	}
	_, err := allreduce.AllReduce(ctx, ts[1], allreduce.Config{Rank: 1, Size: 2, Generation: 1}, make([]float32, 4))
	var fe *allreduce.FrameError
	if !errors.As(err, &fe) || fe.Field != "generation" {
		t.Fatalf("error %v, want a generation FrameError", err)
	}
}

func TestOversizedFrameIsRefused(t *testing.T) {
	nodes := startNodes(t, 2, grpcring.Options{MaxFrameBytes: 1 << 10})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Bypass the client-side limit to see what the server does with a big message.
	tr, err := nodes[0].svc.Connect(ctx, nodes[1].addr, 1, grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	big := &allreduce.Frame{Generation: 1, Data: make([]byte, 64<<10)}
	// The first send may be accepted locally before the server's refusal comes back.
	deadline := time.Now().Add(5 * time.Second)
	for err == nil && time.Now().Before(deadline) {
		err = tr.Send(ctx, big)
	}
	if status.Code(errors.Unwrap(err)) != codes.ResourceExhausted && !strings.Contains(fmt.Sprint(err), "ResourceExhausted") {
		t.Fatalf("sending a 64 KiB frame to a 1 KiB server: error %v, want ResourceExhausted", err)
	}
}

func TestFramesRejectsBadPayloadLength(t *testing.T) {
	// The service checks the payload itself too (servers may be built with larger limits).
	nodes := startNodes(t, 2, grpcring.Options{MaxFrameBytes: 1 << 10})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := grpc.NewClient(nodes[1].addr, grpcring.DialOptions(1<<10)...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := ringtrainv1.NewRingClient(conn).Frames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&ringtrainv1.RingFrame{Data: make([]byte, 7)}); err != nil {
		t.Fatal(err)
	}
	_, err = stream.CloseAndRecv()
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "7 bytes") {
		t.Fatalf("error %v, want InvalidArgument naming the 7 bytes", err)
	}
}

func TestDeadNeighbourUnblocks(t *testing.T) {
	// Rank 0's neighbour (a live server) never runs the all-reduce: ctx's deadline must end the call.
	nodes := startNodes(t, 2, grpcring.Options{MaxFrameBytes: 64 << 10})
	ts := connect(t, nodes, []int{0, 1}, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := allreduce.AllReduce(ctx, ts[0], allreduce.Config{Rank: 0, Size: 2, Generation: 1, FrameBytes: 64 << 10}, make([]float32, 20<<20))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("returned after %v", d)
	}
	// The cancelled stream is replaced on the next Connect, and the ring works again.
	ts = connect(t, nodes, []int{0, 1}, 2)
	bufs, sum := randomBufs(2, 5000, 4)
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	if _, err := allreduce.RunRing(rctx, ts, allreduce.Config{Generation: 2, Step: 1, FrameBytes: 64 << 10}, bufs); err != nil {
		t.Fatal(err)
	}
	checkSums(t, bufs, sum)
}

func TestConnectToNobodyTimesOut(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there any more
	svc := grpcring.NewService(grpcring.Options{})
	defer svc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := svc.Connect(ctx, addr, 1); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("error %v, want a deadline error naming %s", err, addr)
	}
}

func TestLocalSocket(t *testing.T) {
	tests := []struct {
		name      string
		listen    bool // the nodes serve their local sockets
		stale     bool // a socket file nobody accepts on is left for each node
		wantLocal bool
	}{
		{"neighbour serves its socket", true, false, true},
		{"no socket: TCP", false, false, false},
		{"stale socket file: TCP", false, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			nodes := startNodesOn(t, 2, grpcring.Options{MaxFrameBytes: 64 << 10, SocketDir: dir}, tc.listen)
			if tc.stale {
				for _, nd := range nodes {
					l, err := net.Listen("unix", grpcring.LocalSocketPath(dir, nd.addr))
					if err != nil {
						t.Fatal(err)
					}
					l.(*net.UnixListener).SetUnlinkOnClose(false)
					l.Close()
				}
			}
			ts := connect(t, nodes, []int{0, 1}, 1)
			for r, tr := range ts {
				target := tr.(*grpcring.Transport).Target()
				if got := strings.HasPrefix(target, "unix://"); got != tc.wantLocal {
					t.Fatalf("rank %d dials %q; want a local socket: %v", r, target, tc.wantLocal)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			bufs, sum := randomBufs(2, 50_000, 11)
			if _, err := allreduce.RunRing(ctx, ts, allreduce.Config{Generation: 1, Step: 1, FrameBytes: 64 << 10}, bufs); err != nil {
				t.Fatal(err)
			}
			checkSums(t, bufs, sum)
		})
	}
}

func TestListenLocal(t *testing.T) {
	dir := t.TempDir()
	const addr = "10.0.0.7:4000"
	svc := grpcring.NewService(grpcring.Options{SocketDir: dir})
	defer svc.Close()

	// A stale socket file is replaced.
	stale, err := net.Listen("unix", grpcring.LocalSocketPath(dir, addr))
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	lis, err := svc.ListenLocal(addr)
	if err != nil {
		t.Fatalf("over a stale socket file: %v", err)
	}
	defer lis.Close()

	// A live one is not.
	if l, err := grpcring.NewService(grpcring.Options{SocketDir: dir}).ListenLocal(addr); err == nil || !strings.Contains(err.Error(), "in use") {
		if l != nil {
			l.Close()
		}
		t.Fatalf("second listener on a live socket: error %v, want one saying it is in use", err)
	}
	if _, err := grpcring.NewService(grpcring.Options{}).ListenLocal(addr); err == nil || !strings.Contains(err.Error(), "SocketDir") {
		t.Fatalf("without SocketDir: error %v, want one naming SocketDir", err)
	}
}

func TestSendIsDoneWithPayloadWhenItReturns(t *testing.T) {
	// Send passes the payload to gRPC without copying it: it must not return
	// before gRPC has copied it out, since the all-reduce overwrites the region
	// right after. Overwrite it at once and check what arrives.
	const size = 1 << 20
	nodes := startNodes(t, 2, grpcring.Options{MaxFrameBytes: size})
	ts := connect(t, nodes, []int{0, 1}, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	data := make([]byte, size)
	for seq := range uint32(8) {
		for i := range data {
			data[i] = byte(i*7) + byte(seq)
		}
		want := append([]byte(nil), data...)
		if err := ts[0].Send(ctx, &allreduce.Frame{Generation: 1, Seq: seq, Data: data}); err != nil {
			t.Fatal(err)
		}
		for i := range data {
			data[i] = 0xee
		}
		f, err := ts[1].Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := append(append([]byte(nil), f.Data...), bytes.Join(f.Parts, nil)...)
		if f.Seq != seq || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: received seq %d and %d payload bytes that differ from what was sent", seq, f.Seq, len(got))
		}
	}
}
