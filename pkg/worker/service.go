package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
	"github.com/ringtrain/ringtrain/pkg/allreduce/grpcring"
	"github.com/ringtrain/ringtrain/pkg/metrics"
	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/protocol"
	"github.com/ringtrain/ringtrain/pkg/train"
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
	x       []float32
	labels  []int32
	lastGen uint64
	idx     []int // 0..rows-1 of the current shard, reused
}

// pendingStep is an all-reduced gradient waiting for its Commit.
type pendingStep struct {
	generation, step uint64
	count            float32
}

// service implements the Worker gRPC service on a replica.
type service struct {
	pb.UnimplementedWorkerServer
	log   *slog.Logger
	self  func() string // the worker's advertised gRPC address
	ring  *grpcring.Service
	rep   *replica
	clock func() time.Time
	// expect is the model configuration the worker accepts ("" = any).
	expect string
	// dial carries the transport credentials for ring connections.
	dial    grpc.DialOption
	metrics *metrics.Worker
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
	if s.expect != "" && cfg.String() != s.expect {
		return fmt.Errorf("this worker was started for another model: %s", model.DiffStrings(cfg.String(), s.expect))
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
	classes := cfg.Outputs
	if classes == 1 {
		classes = 2
	}
	s.rep.mu.Lock()
	defer s.rep.mu.Unlock()
	if s.rep.runID == runID && s.rep.net != nil {
		return nil // already set up by a LoadState that overtook the Join response
	}
	r := s.rep
	r.runID, r.job, r.cfg, r.classes, r.net, r.opt = runID, job, cfg, classes, net, opt
	r.loaded, r.pending, r.lastGen = false, nil, 0
	return nil
}

func (s *service) checkRun(runID string) error {
	if s.rep.net == nil {
		return status.Error(codes.FailedPrecondition, "worker has not joined a run yet")
	}
	if runID != s.rep.runID {
		return status.Errorf(codes.FailedPrecondition, "request for run %q, this worker is in run %q", runID, s.rep.runID)
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
	if h.ParamCount != uint64(np) || h.OptimizerCount != uint64(no) {
		return status.Errorf(codes.InvalidArgument, "load state: %d params + %d optimizer values, the model needs %d + %d", h.ParamCount, h.OptimizerCount, np, no)
	}
	staged := make([]float32, np+no)
	next := uint64(0)
	for chunk := first; ; {
		if len(chunk.Data)%4 != 0 || chunk.Offset != next || chunk.Offset+uint64(len(chunk.Data)/4) > uint64(len(staged)) {
			return status.Errorf(codes.InvalidArgument, "load state: chunk at offset %d with %d bytes does not fit (expected offset %d of %d values)", chunk.Offset, len(chunk.Data), next, len(staged))
		}
		protocol.Floats(staged[chunk.Offset:chunk.Offset+uint64(len(chunk.Data)/4)], chunk.Data)
		next += uint64(len(chunk.Data) / 4)
		chunk, err = stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return status.Errorf(codes.Aborted, "load state: %v", err)
		}
	}
	if next != uint64(len(staged)) {
		return status.Errorf(codes.InvalidArgument, "load state: got %d of %d values", next, len(staged))
	}
	if sum := model.Checksum(staged[:np]); sum != h.Checksum {
		return status.Errorf(codes.DataLoss, "load state: checksum %08x, header says %08x", sum, h.Checksum)
	}
	copy(s.rep.net.Params, staged[:np])
	copy(s.rep.opt.State, staged[np:])
	s.rep.opt.Steps = int64(h.OptimizerSteps)
	s.rep.loaded = true
	s.rep.pending = nil
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
		return status.Error(codes.FailedPrecondition, "save state: the worker holds no state yet")
	}
	return protocol.SendState(stream.Context(), stream.Send, s.rep.runID, s.rep.job, s.rep.net.Params, s.rep.opt)
}

// Step implements pb.WorkerServer: shard gradient sum, ring all-reduce, hold.
func (s *service) Step(ctx context.Context, req *pb.StepRequest) (*pb.StepReport, error) {
	s.touch()
	s.rep.mu.Lock()
	defer s.rep.mu.Unlock()
	if err := s.checkRun(req.RunId); err != nil {
		return nil, err
	}
	if !s.rep.loaded {
		return nil, status.Error(codes.FailedPrecondition, "step: the worker holds no state yet")
	}
	n := len(req.Ring)
	if n == 0 || int(req.Rank) >= n {
		return nil, status.Errorf(codes.InvalidArgument, "step %d: rank %d is not in a ring of %d", req.Step, req.Rank, n)
	}
	if self := s.self(); req.Ring[req.Rank] != self {
		return nil, status.Errorf(codes.InvalidArgument, "step %d: ring position %d is %s, this worker is %s", req.Step, req.Rank, req.Ring[req.Rank], self)
	}
	if req.Generation < s.rep.lastGen {
		return nil, status.Errorf(codes.FailedPrecondition, "step %d: ring generation %d is older than %d", req.Step, req.Generation, s.rep.lastGen)
	}
	if p := s.rep.pending; p != nil {
		s.log.Warn("discarding an uncommitted step", "step", p.step, "generation", p.generation)
		s.rep.pending = nil
	}
	ds, err := protocol.DecodeShard(req.Shard, s.rep.cfg.Inputs, s.rep.classes)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "step %d: %v", req.Step, err)
	}
	t0 := s.clock()
	for len(s.rep.idx) < ds.Rows() {
		s.rep.idx = append(s.rep.idx, len(s.rep.idx))
	}
	net := s.rep.net
	r, err := train.ShardGradients(net, ds, s.rep.idx[:ds.Rows()], &s.rep.x, &s.rep.labels)
	if err != nil {
		return nil, status.Errorf(codes.DataLoss, "step %d on worker %s: %v", req.Step, s.self(), err)
	}
	computed := s.clock()
	buf := net.Grads[:len(net.Grads)+protocol.Trailing]
	tail := buf[len(net.Grads):]
	tail[0], tail[1], tail[2] = float32(r.LossSum), float32(r.Correct), float32(r.Count)
	var stats allreduce.Stats
	if n > 1 {
		right := req.Ring[(int(req.Rank)+1)%n]
		t, err := s.ring.Connect(ctx, right, req.Generation, s.dial)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "step %d: connect to right neighbour %s: %v", req.Step, right, err)
		}
		stats, err = allreduce.AllReduce(ctx, t, allreduce.Config{
			Rank: int(req.Rank), Size: n, Generation: req.Generation, Step: req.Step,
			FrameBytes: int(s.rep.job.FrameBytes),
		}, buf)
		if err != nil {
			return nil, status.Errorf(codes.Aborted, "step %d generation %d: all-reduce: %v", req.Step, req.Generation, err)
		}
	}
	done := s.clock()
	s.rep.lastGen = req.Generation
	if tail[2] <= 0 {
		return nil, status.Errorf(codes.InvalidArgument, "step %d: the global batch is empty", req.Step)
	}
	if err := model.CheckFinite("all-reduced gradient", buf); err != nil {
		return nil, status.Errorf(codes.DataLoss, "step %d: %v", req.Step, err)
	}
	s.rep.pending = &pendingStep{generation: req.Generation, step: req.Step, count: tail[2]}
	s.metrics.Step(computed.Sub(t0), done.Sub(computed), stats.BytesSent, stats.BytesRecv)
	return &pb.StepReport{
		LossSum: float64(tail[0]), Correct: uint64(tail[1] + 0.5), Count: uint64(tail[2] + 0.5),
		BytesSent: uint64(stats.BytesSent), BytesReceived: uint64(stats.BytesRecv),
		ComputeSeconds: computed.Sub(t0).Seconds(), AllreduceSeconds: done.Sub(computed).Seconds(),
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
	p := s.rep.pending
	if req.Apply {
		if p == nil || p.step != req.Step || p.generation != req.Generation {
			return nil, status.Errorf(codes.FailedPrecondition, "commit of step %d generation %d, but the held step is %s", req.Step, req.Generation, p)
		}
		s.rep.opt.Step(s.rep.net.Params, s.rep.net.Grads, 1/p.count)
	}
	s.metrics.Commit(req.Apply)
	s.rep.pending = nil
	rep := &pb.CommitReport{OptimizerSteps: uint64(s.rep.opt.Steps)}
	if req.WantChecksum {
		rep.Checksum = model.Checksum(s.rep.net.Params)
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
