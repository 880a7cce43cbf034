package worker

import (
	"context"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/protocol"
	"github.com/ringtrain/ringtrain/pkg/train"
	pb "github.com/ringtrain/ringtrain/proto/ringtrain/v1"
)

func startWorker(t *testing.T) (*Worker, pb.WorkerClient) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := Start(ctx, Config{ID: "w", GRPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0", GossipFast: true})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	conn, err := grpc.NewClient(w.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		<-done
	})
	return w, pb.NewWorkerClient(conn)
}

func testJob() (*pb.JobSpec, model.Config, *model.Optimizer) {
	cfg := model.Config{Inputs: 2, Hidden: []int{3}, Outputs: 1, Activation: model.Tanh, Output: model.Sigmoid, Loss: model.BCE, Bias: true, Init: model.Xavier}
	opt, _ := model.NewOptimizer(model.OptimizerConfig{Kind: model.Momentum, LR: 0.1, Momentum: 0.9}, cfg.NumParams())
	return &pb.JobSpec{RunId: "run1", Model: protocol.ModelSpec(cfg), Optimizer: protocol.OptimizerSpec(opt.Config)}, cfg, opt
}

// load streams state into the worker, optionally damaging one chunk.
func load(ctx context.Context, c pb.WorkerClient, job *pb.JobSpec, params []float32, opt *model.Optimizer, damage func(*pb.StateChunk)) error {
	stream, err := c.LoadState(ctx)
	if err != nil {
		return err
	}
	err = protocol.SendState(ctx, func(ch *pb.StateChunk) error {
		if damage != nil {
			damage(ch)
		}
		return stream.Send(ch)
	}, job.RunId, job, params, opt)
	if err != nil {
		return err
	}
	_, err = stream.CloseAndRecv()
	return err
}

func save(ctx context.Context, t *testing.T, c pb.WorkerClient) []float32 {
	t.Helper()
	s, err := c.SaveState(ctx, &pb.SaveStateRequest{RunId: "run1"})
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for {
		ch, err := s.Recv()
		if err != nil {
			break
		}
		out = append(out, ch.Data...)
	}
	f := make([]float32, len(out)/4)
	protocol.Floats(f, out)
	return f
}

func TestWorkerRefusesBadStateAndRequests(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, c := startWorker(t)
	job, cfg, opt := testJob()
	net, _ := model.New(cfg, 1)

	if _, err := c.Step(ctx, &pb.StepRequest{RunId: "run1"}); err == nil || !strings.Contains(err.Error(), "has not joined a run") {
		t.Fatalf("step before any job: %v", err)
	}
	if err := load(ctx, c, job, net.Params, opt, nil); err != nil {
		t.Fatal(err)
	}
	good := save(ctx, t, c)

	tests := []struct {
		name   string
		damage func(*pb.StateChunk)
		want   string
	}{
		{"wrong parameter count", func(ch *pb.StateChunk) {
			if ch.Header != nil {
				ch.Header.ParamCount++
			}
		}, "the model needs"},
		{"checksum", func(ch *pb.StateChunk) {
			if ch.Header != nil {
				ch.Header.Checksum ^= 1
			}
		}, "checksum"},
		{"odd chunk", func(ch *pb.StateChunk) { ch.Data = ch.Data[:len(ch.Data)-1] }, "does not fit"},
		{"offset gap", func(ch *pb.StateChunk) { ch.Offset += 4 }, "does not fit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			other := slices.Clone(net.Params)
			other[0] += 1
			err := load(ctx, c, job, other, opt, tc.damage)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if got := save(ctx, t, c); !slices.Equal(got, good) {
				t.Fatal("a refused state transfer changed the worker's state")
			}
		})
	}

	shard := protocol.EncodeShard(&data.Dataset{Features: 2, Classes: 2, Values: []float32{1, 2}, Labels: []int32{1}}, []int{0})
	if _, err := c.Step(ctx, &pb.StepRequest{RunId: "run1", Generation: 1, Ring: []string{"elsewhere:1"}, Rank: 0, Shard: shard}); err == nil || !strings.Contains(err.Error(), "this worker is") {
		t.Fatalf("step with a ring that does not contain the worker: %v", err)
	}
	if _, err := c.Step(ctx, &pb.StepRequest{RunId: "other", Generation: 1, Ring: []string{w.Addr()}, Shard: shard}); err == nil || !strings.Contains(err.Error(), `run "other"`) {
		t.Fatalf("step of another run: %v", err)
	}
	for _, bad := range []struct {
		name string
		req  *pb.StepRequest
		want string
	}{
		{"learning rate NaN", &pb.StepRequest{LearningRate: math.NaN()}, "learning rate NaN"},
		{"learning rate +Inf", &pb.StepRequest{LearningRate: math.Inf(1)}, "learning rate +Inf"},
		{"negative learning rate", &pb.StepRequest{LearningRate: -0.1}, "learning rate -0.1"},
		{"zero-input bitmap of the wrong length", &pb.StepRequest{ZeroInputs: []byte{0, 0}}, "zero-input bitmap of 2 bytes for 2 features"},
	} {
		req := bad.req
		req.RunId, req.Generation, req.Ring, req.Shard = "run1", 1, []string{w.Addr()}, shard
		if _, err := c.Step(ctx, req); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Fatalf("%s: %v, want an error naming %q", bad.name, err, bad.want)
		}
	}
	if _, err := c.Commit(ctx, &pb.CommitRequest{RunId: "run1", Step: 0, Apply: true}); err == nil || !strings.Contains(err.Error(), "held step is none") {
		t.Fatalf("commit with nothing held: %v", err)
	}
	// A good step on a ring of one, then its commit, changes the parameters
	// exactly as the single-process optimizer does.
	r, err := c.Step(ctx, &pb.StepRequest{RunId: "run1", Generation: 1, Step: 0, Ring: []string{w.Addr()}, Shard: shard})
	if err != nil || r.Count != 1 {
		t.Fatalf("step: %v %v", r, err)
	}
	if _, err := c.Commit(ctx, &pb.CommitRequest{RunId: "run1", Generation: 1, Step: 0, Apply: true}); err != nil {
		t.Fatal(err)
	}
	net.ZeroGrad()
	net.ForwardBackward([]float32{1, 2}, []int32{1}, nil)
	opt.Step(net.Params, net.Grads, 1)
	got := save(ctx, t, c)
	if !slices.Equal(got[:len(net.Params)], net.Params) || !slices.Equal(got[len(net.Params):], opt.State) {
		t.Fatal("the committed step differs from the single-process update")
	}
}

// TestGarbageAndOversizedInputCrashNothing sends random bytes to the gRPC
// and gossip ports and an oversized request, and checks that the worker
// still answers its health service.
func TestGarbageAndOversizedInputCrashNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, c := startWorker(t)
	rng := rand.New(rand.NewPCG(1, 1))
	junk := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	gossip := w.cluster.Self().GossipAddr
	for i := range 20 {
		for _, target := range []struct{ network, addr string }{{"tcp", w.Addr()}, {"tcp", gossip}, {"udp", gossip}} {
			conn, err := net.DialTimeout(target.network, target.addr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if i%2 == 1 && target.network == "tcp" && target.addr == w.Addr() {
				conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")) // a valid preface, then garbage frames
			}
			conn.SetDeadline(time.Now().Add(200 * time.Millisecond))
			conn.Write(junk(1 + rng.IntN(4096)))
			conn.Close()
		}
	}
	// An oversized request is refused by gRPC itself.
	big := &pb.StepRequest{RunId: "x", Shard: &pb.Shard{Values: make([]byte, protocol.MaxMessageBytes+1)}}
	if _, err := c.Step(ctx, big, grpc.MaxCallSendMsgSize(1<<30)); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized request: %v, want ResourceExhausted", err)
	}
	conn, err := grpc.NewClient(w.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("the worker stopped answering after garbage input: %v", err)
	}
	t.Logf("health after garbage: %s", r.Status)
	if n := len(w.cluster.Members()); n != 1 {
		t.Fatalf("garbage on the gossip port changed the membership: %d members", n)
	}
}

// TestWorkerExactJob: a job under exact reduction that cannot work is
// refused at set-up with a message naming why, and a good one computes a
// step whose update is the single-process exact trainer's, bit for bit.
func TestWorkerExactJob(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, c := startWorker(t)
	for _, bad := range []struct {
		name string
		edit func(*pb.JobSpec)
		want string
	}{
		{"bf16 wire", func(j *pb.JobSpec) { j.Wire = "bf16" }, "exact reduction with the bf16 wire"},
		{"no block count", func(j *pb.JobSpec) { j.ExactMaxBlocks = 0 }, "without the batch's block count"},
		{"fractional bits", func(j *pb.JobSpec) { j.ExactFracBits = 63 }, "exact fractional bits must be 0..62"},
	} {
		job, cfg, opt := testJob()
		job.RunId = "exact-" + strings.ReplaceAll(bad.name, " ", "-")
		job.ExactBlock, job.ExactFracBits, job.ExactMaxBlocks = 2, 32, 4
		bad.edit(job)
		net, _ := model.New(cfg, 1)
		if err := load(ctx, c, job, net.Params, opt, nil); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Fatalf("%s: %v, want an error naming %q", bad.name, err, bad.want)
		}
	}
	job, cfg, opt := testJob()
	job.ExactBlock, job.ExactFracBits, job.ExactMaxBlocks = 2, 32, 4
	net, _ := model.New(cfg, 1)
	if err := load(ctx, c, job, net.Params, opt, nil); err != nil {
		t.Fatal(err)
	}
	ds := &data.Dataset{Features: 2, Classes: 2, Values: []float32{1, 2, -1, 0.5, 0.3, -2}, Labels: []int32{1, 0, 1}}
	shard := protocol.EncodeShard(ds, []int{0, 1, 2})
	if _, err := c.Step(ctx, &pb.StepRequest{RunId: "run1", Generation: 1, Ring: []string{w.Addr()}, Shard: shard, ZeroInputs: []byte{1}}); err == nil || !strings.Contains(err.Error(), "zero-input bitmap under exact reduction") {
		t.Fatalf("a zero-input bitmap under exact reduction: %v", err)
	}
	if _, err := c.Step(ctx, &pb.StepRequest{RunId: "run1", Generation: 2, Step: 0, Ring: []string{w.Addr()}, Shard: shard}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Commit(ctx, &pb.CommitRequest{RunId: "run1", Generation: 2, Step: 0, Apply: true}); err != nil {
		t.Fatal(err)
	}
	local, err := train.NewLocalExecutor(net, opt, ds)
	if err != nil {
		t.Fatal(err)
	}
	if err := local.SetExact(model.Exact{Block: 2, FracBits: 32}, 4); err != nil {
		t.Fatal(err)
	}
	if _, err := local.Step(ctx, 0, []int{0, 1, 2}, 0); err != nil {
		t.Fatal(err)
	}
	got := save(ctx, t, c)
	if !slices.Equal(got[:len(net.Params)], net.Params) || !slices.Equal(got[len(net.Params):], opt.State) {
		t.Fatal("the worker's exact step differs from the single-process exact trainer's")
	}
}
