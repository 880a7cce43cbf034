package worker

import (
	"context"
	"errors"
	"fmt"
	"math"

	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
	"github.com/ringtrain/ringtrain/pkg/engine"
	"github.com/ringtrain/ringtrain/pkg/metrics"
	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/protocol"
	pb "github.com/ringtrain/ringtrain/proto/ringtrain/v1"
)

// replica is a worker's model replica and the step it holds between Step and
// Commit. The coordinator serializes calls, but the mutex keeps a stray
// concurrent call from corrupting the replica.
type replica struct {
	mu      sync.Mutex
	runID   string
	job     *pb.JobSpec
	cfg     model.Config
	classes int
	net     *model.Network
	opt     *model.Optimizer
	loaded  bool // parameters received from the coordinator
	pending *pendingStep
	applied *pendingStep // the last step applied (commits are idempotent)
	buf     engine.Buffers
	lastGen uint64
	idx     []int // 0..rows-1 of the current shard, reused

	// buckets is the job's cut of the all-reduced buffer (engine.Buckets).
	buckets []engine.Bucket
	wire    allreduce.Wire
	// With the bf16 wire: residual is what rounding removed from this
	// worker's contributions up to the last applied step (added to its
	// next contribution), next what the held step's rounding removed
	// (becomes residual when the step is applied).
	residual, next []float32
	kept           []int32   // the step's kept first-layer inputs (engine.KeptInputs), reused
	packed, packR  []float32 // the packed first-layer bucket and its residual, reused
	packN          []float32 // the packed bucket's next residual, reused
	// limit is exact reduction's bound on a block sum (engine.ExactLimit);
	// exact reduction is on when net.Exact().On().
	limit float64
}

// pendingStep is an all-reduced gradient waiting for its Commit.
type pendingStep struct {
	generation, step uint64
	count            float32
	lr               float64 // the step's learning rate (0: the job's)
}

// service implements the Worker gRPC service on a replica.
type service struct {
	pb.UnimplementedWorkerServer
	log   *slog.Logger
	self  func() string // the worker's advertised gRPC address
	ring  RingNetwork
	rep   *replica
	clock func() time.Time
	// expect is the model configuration the worker accepts ("" = any).
	expect  string
	metrics *metrics.Worker
	threads int           // the engine's threads
	delay   time.Duration // Config.ComputeDelay
	// lastRequest is when the coordinator last called (unix nanoseconds).
	lastRequest atomic.Int64
}

// touch records that the coordinator called.
func (s *service) touch() { s.lastRequest.Store(s.clock().UnixNano()) }

func (s *service) setJob(runID string, job *pb.JobSpec) error {
	cfg, err := protocol.ModelConfig(job.GetModel())
	if err != nil {
		return fmt.Errorf("job model: %w", err)
	}
	if err := protocol.CheckModel("this worker", cfg, s.expect); err != nil {
		return err
	}
	oc, err := protocol.OptimizerConfig(job.GetOptimizer())
	if err != nil {
		return fmt.Errorf("job optimizer: %w", err)
	}
	net, err := model.New(cfg, 0)
	if err != nil {
		return err
	}
	opt, err := model.NewOptimizer(oc, len(net.Params))
	if err != nil {
		return err
	}
	net.SetThreads(s.threads)
	opt.SetPool(net.Pool())
	classes := cfg.Outputs
	if classes == 1 {
		classes = 2
	}
	wire, err := allreduce.ParseWire(job.GetWire())
	if err != nil {
		return fmt.Errorf("job: %w", err)
	}
	buckets := engine.Buckets(net, int(job.GetBucketBytes()))
	var limit float64
	if job.GetExactBlock() > 0 {
		ex := model.Exact{Block: int(job.GetExactBlock()), FracBits: int(job.GetExactFracBits())}
		if wire != allreduce.WireF32 {
			return fmt.Errorf("job: exact reduction with the %s wire: the ring must carry the integers as they are", wire)
		}
		if job.GetExactMaxBlocks() == 0 {
			return errors.New("job: exact reduction without the batch's block count")
		}
		if err := net.SetExact(ex); err != nil {
			return fmt.Errorf("job: %w", err)
		}
		buckets = engine.BucketsExact(net, int(job.GetBucketBytes()))
		limit = engine.ExactLimit(ex, int(job.GetExactMaxBlocks()))
	}
	var residual, next []float32
	if wire == allreduce.WireBF16 {
		residual, next = make([]float32, len(net.Grads)+engine.Trailing), make([]float32, len(net.Grads)+engine.Trailing)
	}
	s.rep.mu.Lock()
	defer s.rep.mu.Unlock()
	if s.rep.runID == runID && s.rep.net != nil {
		return nil // already set up by a LoadState that overtook the Join response
	}
	r := s.rep
	r.runID, r.job, r.cfg, r.classes, r.net, r.opt = runID, job, cfg, classes, net, opt
	r.loaded, r.pending, r.applied, r.lastGen = false, nil, nil, 0
	r.buckets, r.wire, r.residual, r.next, r.limit = buckets, wire, residual, next, limit
	return nil
}

func (s *service) checkRun(runID string) error {
	if s.rep.net == nil {
		return protocol.Errorf(codes.FailedPrecondition, protocol.ReasonWrongRun, "worker has not joined a run yet")
	}
	if runID != s.rep.runID {
		return protocol.Errorf(codes.FailedPrecondition, protocol.ReasonWrongRun, "request for run %q, this worker is in run %q", runID, s.rep.runID)
	}
	return nil
}

// LoadState implements pb.WorkerServer. The new state is staged and swapped
// in only when complete and verified.
func (s *service) LoadState(stream grpc.ClientStreamingServer[pb.StateChunk, pb.StateAck]) error {
	s.touch()
	first, err := stream.Recv()
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "load state: %v", err)
	}
	h := first.GetHeader()
	if h == nil {
		return status.Error(codes.InvalidArgument, "load state: first chunk has no header")
	}
	s.rep.mu.Lock()
	other := s.rep.runID != h.RunId
	s.rep.mu.Unlock()
	if other && h.Job != nil {
		// The coordinator may load the state before the Join response has
		// reached this worker; the header carries the same job.
		if err := s.setJob(h.RunId, h.Job); err != nil {
			return status.Errorf(codes.InvalidArgument, "load state: %v", err)
		}
	}
	s.rep.mu.Lock()
	defer s.rep.mu.Unlock()
	if err := s.checkRun(h.RunId); err != nil {
		return err
	}
	np, no := len(s.rep.net.Params), s.rep.opt.StateLen(len(s.rep.net.Params))
	st, err := protocol.ReceiveState(first, stream.Recv, np, no)
	switch {
	case errors.Is(err, protocol.ErrBadChecksum):
		return protocol.Errorf(codes.DataLoss, protocol.ReasonBadChecksum, "load state: %v", err)
	case errors.Is(err, protocol.ErrBadChunk):
		return protocol.Errorf(codes.InvalidArgument, protocol.ReasonBadRequest, "load state: %v", err)
	case err != nil:
		return status.Errorf(codes.Aborted, "load state: %v", err)
	}
	copy(s.rep.net.Params, st.Params)
	copy(s.rep.opt.State, st.Opt)
	s.rep.opt.Steps = int64(h.OptimizerSteps)
	s.rep.loaded = true
	s.rep.pending, s.rep.applied = nil, nil
	// What bf16 rounding removed belongs to the updates this replica
	// applied; a loaded state replaces them, so the feedback starts anew.
	clear(s.rep.residual)
	s.metrics.StateLoaded()
	s.log.Info("state loaded", "params", np, "optimizer_values", no, "optimizer_steps", h.OptimizerSteps, "checksum", fmt.Sprintf("%08x", h.Checksum))
	return stream.SendAndClose(&pb.StateAck{Checksum: h.Checksum})
}

// SaveState implements pb.WorkerServer.
func (s *service) SaveState(req *pb.SaveStateRequest, stream grpc.ServerStreamingServer[pb.StateChunk]) error {
	s.touch()
	s.rep.mu.Lock()
	defer s.rep.mu.Unlock()
	if err := s.checkRun(req.RunId); err != nil {
		return err
	}
	if !s.rep.loaded {
		return protocol.Errorf(codes.FailedPrecondition, protocol.ReasonNoState, "save state: the worker holds no state yet")
	}
	return protocol.SendState(stream.Context(), stream.Send, s.rep.runID, s.rep.job, s.rep.net.Params, s.rep.opt)
}

// Step implements pb.WorkerServer: shard gradient sum, ring all-reduce,
// finiteness check of the totals, hold.
//
// A worker whose own shard gives NaN or infinity still takes part in the
// all-reduce: IEEE sums keep a NaN or an infinity, so every replica ends
// with non-finite totals and answers ReasonNonFinite, and the coordinator
// skips the batch without aborting the ring. Bailing out early would leave
// the neighbours' frames of this attempt in flight.
func (s *service) Step(ctx context.Context, req *pb.StepRequest) (*pb.StepReport, error) {
	s.touch()
	s.rep.mu.Lock()
	defer s.rep.mu.Unlock()
	if err := s.checkRun(req.RunId); err != nil {
		return nil, err
	}
	if !s.rep.loaded {
		return nil, protocol.Errorf(codes.FailedPrecondition, protocol.ReasonNoState, "step: the worker holds no state yet")
	}
	n := len(req.Ring)
	if n == 0 || int(req.Rank) >= n {
		return nil, protocol.Errorf(codes.InvalidArgument, protocol.ReasonBadRequest, "step %d: rank %d is not in a ring of %d", req.Step, req.Rank, n)
	}
	if self := s.self(); req.Ring[req.Rank] != self {
		return nil, protocol.Errorf(codes.InvalidArgument, protocol.ReasonBadRequest, "step %d: ring position %d is %s, this worker is %s", req.Step, req.Rank, req.Ring[req.Rank], self)
	}
	if req.Generation < s.rep.lastGen {
		return nil, protocol.Errorf(codes.FailedPrecondition, protocol.ReasonStaleGeneration, "step %d: ring generation %d is older than %d", req.Step, req.Generation, s.rep.lastGen)
	}
	var committed *pb.CommitReport
	if req.Commit != nil {
		// The previous step's commit rides on this request.
		c, err := s.commit(req.Commit)
		if err != nil {
			return nil, err
		}
		committed = c
	}
	if p := s.rep.pending; p != nil {
		s.log.Warn("discarding an uncommitted step", "step", p.step, "generation", p.generation)
		s.rep.pending = nil
	}
	ds, err := protocol.DecodeShard(req.Shard, s.rep.cfg.Inputs, s.rep.classes)
	if err != nil {
		return nil, protocol.Errorf(codes.InvalidArgument, protocol.ReasonBadRequest, "step %d: %v", req.Step, err)
	}
	if lr := req.LearningRate; lr < 0 || math.IsNaN(lr) || math.IsInf(lr, 0) {
		return nil, protocol.Errorf(codes.InvalidArgument, protocol.ReasonBadRequest, "step %d: learning rate %v is not a finite rate >= 0", req.Step, lr)
	}
	kept, err := engine.KeptInputs(req.ZeroInputs, s.rep.cfg.Inputs, s.rep.kept)
	if err != nil {
		return nil, protocol.Errorf(codes.InvalidArgument, protocol.ReasonBadRequest, "step %d: %v", req.Step, err)
	}
	if kept != nil {
		s.rep.kept = kept
	}
	s.rep.lastGen = req.Generation
	t0 := s.clock()
	for len(s.rep.idx) < ds.Rows() {
		s.rep.idx = append(s.rep.idx, len(s.rep.idx))
	}
	net := s.rep.net
	if s.delay > 0 {
		// A worker slowed on purpose (tests of straggler detection): the
		// delay counts as compute, before any bucket is released.
		t := time.NewTimer(s.delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	var t allreduce.Transport
	if n > 1 {
		left, right := req.Ring[(int(req.Rank)+n-1)%n], req.Ring[(int(req.Rank)+1)%n]
		if t, err = s.ring.Connect(ctx, left, right, req.Generation); err != nil {
			return nil, protocol.Errorf(codes.Unavailable, protocol.ReasonRing, "step %d: connect to right neighbour %s: %v", req.Step, right, err)
		}
	}
	acfg := allreduce.Config{Rank: int(req.Rank), Size: n, Generation: req.Generation, Step: req.Step,
		FrameBytes: int(s.rep.job.FrameBytes), Wire: s.rep.wire}
	var total engine.Totals
	var stats allreduce.Stats
	var arStart, computed time.Time
	var checkErr error
	if net.Exact().On() {
		if kept != nil {
			return nil, protocol.Errorf(codes.InvalidArgument, protocol.ReasonBadRequest, "step %d: a zero-input bitmap under exact reduction", req.Step)
		}
		ar := s.startAllReduceExact(ctx, t, acfg, engine.ExactBuffer(net))
		engine.ShardGradientsExact(net, ds, s.rep.idx[:ds.Rows()], int(s.rep.job.GetAccumulate()), &s.rep.buf, s.rep.limit, ar.layerDone)
		computed = s.clock()
		stats, arStart, err = ar.wait()
		if err == nil {
			total, checkErr = engine.ExactTotals(net, s.rep.limit) // the buckets converted themselves
		}
	} else {
		buf := engine.WithTotals(net)
		ar := s.startAllReduce(ctx, t, acfg, buf, kept)
		engine.ShardGradientsKHooked(net, ds, s.rep.idx[:ds.Rows()], int(s.rep.job.GetAccumulate()), &s.rep.buf,
			func(local engine.Totals) { engine.PutTotals(buf[len(net.Grads):], local) }, ar.layerDone)
		computed = s.clock()
		stats, arStart, err = ar.wait()
		if err == nil {
			total = engine.ReadTotals(buf[len(net.Grads):])
			checkErr = engine.CheckStep(net.Pool(), net.Grads, total)
		}
	}
	if err != nil {
		return nil, protocol.Errorf(codes.Aborted, protocol.ReasonRing, "step %d generation %d: all-reduce: %v", req.Step, req.Generation, err)
	}
	done := s.clock()
	if checkErr != nil {
		return nil, protocol.Errorf(codes.OutOfRange, protocol.ReasonNonFinite, "step %d generation %d on worker %s: %v", req.Step, req.Generation, s.self(), checkErr)
	}
	if total.Count <= 0 {
		return nil, protocol.Errorf(codes.InvalidArgument, protocol.ReasonBadRequest, "step %d: the global batch is empty", req.Step)
	}
	s.rep.pending = &pendingStep{generation: req.Generation, step: req.Step, count: float32(total.Count), lr: req.LearningRate}
	// The all-reduce ran from its first bucket's start (during backward,
	// or after it with one bucket) to done; what came after backward was
	// exposed.
	if arStart.IsZero() || arStart.After(done) {
		arStart = done
	}
	active, exposed := done.Sub(arStart), max(done.Sub(computed), 0)
	s.metrics.Step(computed.Sub(t0), active, exposed, stats.BytesSent, stats.BytesRecv)
	return &pb.StepReport{
		LossSum: total.LossSum, Correct: uint64(total.Correct), Count: uint64(total.Count),
		BytesSent: uint64(stats.BytesSent), BytesReceived: uint64(stats.BytesRecv),
		ComputeSeconds: computed.Sub(t0).Seconds(), AllreduceSeconds: active.Seconds(),
		AllreduceExposedSeconds: exposed.Seconds(),
		Commit:                  committed,
	}, nil
}

// Commit implements pb.WorkerServer.
func (s *service) Commit(_ context.Context, req *pb.CommitRequest) (*pb.CommitReport, error) {
	s.touch()
	s.rep.mu.Lock()
	defer s.rep.mu.Unlock()
	if err := s.checkRun(req.RunId); err != nil {
		return nil, err
	}
	return s.commit(req)
}

// commit applies (or discards) the held step named by req. It is
// idempotent: the coordinator may send the commit of a step again (on the
// next Step request and then explicitly, after an aborted attempt), and a
// step already applied is acknowledged without being applied twice.
// s.rep.mu must be held.
func (s *service) commit(req *pb.CommitRequest) (*pb.CommitReport, error) {
	p, done := s.rep.pending, s.rep.applied
	switch {
	case !req.Apply:
		s.rep.pending = nil
	case p != nil && p.step == req.Step && p.generation == req.Generation:
		s.rep.opt.StepLR(s.rep.net.Params, s.rep.net.Grads, 1/p.count, p.lr)
		s.rep.pending, s.rep.applied = nil, p
		s.rep.residual, s.rep.next = s.rep.next, s.rep.residual
		s.metrics.Commit(true)
	case done != nil && done.step == req.Step && done.generation == req.Generation:
		// Applied already: acknowledge again.
	default:
		return nil, protocol.Errorf(codes.FailedPrecondition, protocol.ReasonNoState, "commit of step %d generation %d, but the held step is %s", req.Step, req.Generation, p)
	}
	if !req.Apply {
		s.metrics.Commit(false)
	}
	rep := &pb.CommitReport{OptimizerSteps: uint64(s.rep.opt.Steps)}
	if req.WantChecksum {
		d := model.Digest(s.rep.net.Params)
		rep.ParamsSha256 = d[:]
	}
	return rep, nil
}

// String describes a pending step for error messages.
func (p *pendingStep) String() string {
	if p == nil {
		return "none"
	}
	return fmt.Sprintf("step %d generation %d", p.step, p.generation)
}
