// Package coordinator owns a distributed run: it accepts workers (gossip for
// discovery and failure detection, a gRPC Join for admission), forms the ring
// at every step boundary, ships each worker its shard of the global batch,
// and commits a step only when every worker of the ring has all-reduced it.
// Gradients never pass through the coordinator.
//
// Coordinator implements train.Executor, so the training loop, schedule and
// outputs are those of the single-process trainer.
package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
	"github.com/ringtrain/ringtrain/pkg/coordinator/core"
	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/engine"
	"github.com/ringtrain/ringtrain/pkg/membership"
	"github.com/ringtrain/ringtrain/pkg/metrics"
	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/protocol"
	"github.com/ringtrain/ringtrain/pkg/rpcnet"
	"github.com/ringtrain/ringtrain/pkg/tlsutil"
	"github.com/ringtrain/ringtrain/pkg/trace"
	"github.com/ringtrain/ringtrain/pkg/train"
	pb "github.com/ringtrain/ringtrain/proto/ringtrain/v1"
)

// Config configures a coordinator.
type Config struct {
	GRPCAddr        string // listen address of the coordinator's gRPC server
	Advertise       string // gRPC address workers dial (default: derived)
	GossipAddr      string // memberlist bind address
	GossipAdvertise string // gossip address others use (optional)
	MinWorkers      int    // training waits until this many workers are ready
	MaxWorkers      int    // at most this many workers train; the rest wait as spares (0: no limit)
	// CheckEvery compares the replicas' parameter checksums every this many
	// steps (0: never).
	CheckEvery int
	// StepTimeout bounds one attempt at a step (compute + all-reduce). Once
	// steps have been timed the deadline is ten times the recent step time,
	// between core.DefaultMinStepTimeout and StepTimeout (0: the default,
	// core.DefaultStepTimeout).
	StepTimeout time.Duration
	// FrameBytes is the all-reduce frame size (0: the allreduce default).
	FrameBytes int
	// BucketBytes caps a gradient bucket: the workers all-reduce buckets
	// (the last layers first) while backward computes the earlier layers
	// (0: one bucket, all-reduced after backward; see engine.Buckets).
	BucketBytes int
	// Wire is how the workers' gradients travel (allreduce.WireF32 unless
	// set; WireBF16 rounds them for the wire, with error feedback).
	Wire allreduce.Wire
	// SkipZeroInputs tells the workers, with every step, which input
	// features are zero in the whole global batch: their first-layer
	// weight-gradient columns are zero on every worker and stay off the
	// wire (lossless).
	SkipZeroInputs bool
	// MaxAttempts bounds the attempts at one step before the run fails.
	MaxAttempts int
	GossipFast  bool // memberlist timings for loopback tests
	GossipKey   []byte
	// TLS enables mutual TLS on the coordinator's server and its
	// connections to workers.
	TLS tlsutil.Config
	// Metrics and Trace receive the run's figures (nil: none).
	Metrics *metrics.Coordinator
	Trace   *trace.Recorder
	// Observer sees every committed step and the ring's events (nil: none).
	Observer Observer
	Log      *slog.Logger
	// Threads is the thread count of the coordinator's evaluations (0: one).
	Threads int

	// Seams for tests (nil: the real thing): the network under gRPC
	// (default TCP), the gossip member (default membership.Start) and the
	// clock.
	Network      rpcnet.Network
	StartCluster func(context.Context, membership.Config) (membership.Cluster, error)
	Clock        Clock
}

// Clock is the coordinator's time: Now and timers.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d; stop cancels it.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc implements Clock.
func (SystemClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

func (c *Config) defaults() {
	if c.FrameBytes <= 0 {
		c.FrameBytes = allreduce.DefaultFrameBytes
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Network == nil {
		c.Network = rpcnet.TCP{}
	}
	if c.StartCluster == nil {
		c.StartCluster = func(ctx context.Context, mc membership.Config) (membership.Cluster, error) {
			return membership.Start(ctx, mc)
		}
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
}

// Job is what the coordinator trains: the data and the initial state.
type Job struct {
	Model     model.Config
	Optimizer model.OptimizerConfig
	Train     *data.Dataset
	Params    []float32        // initial parameters
	OptState  *model.Optimizer // initial optimizer state
	// Accumulate is the micro-batches per worker shard (0 or 1: none).
	Accumulate int
	// Exact turns on exact reduction (Exact.On()): shards of whole blocks,
	// fixed-point sums, an int64 ring. ExactMaxBlocks is the number of
	// blocks of the run's largest global batch (engine.MaxBlocks).
	Exact          model.Exact
	ExactMaxBlocks int
}

// workerConn is the control-plane connection to an admitted worker.
type workerConn struct {
	id, addr string
	conn     *grpc.ClientConn
	client   pb.WorkerClient
	health   healthpb.HealthClient
}

// Coordinator runs the distributed side of a training job. Its decisions
// are made by a core.Core; this type carries out the core's actions over
// gRPC and feeds the results back as events.
type Coordinator struct {
	cfg     Config
	log     *slog.Logger
	clock   Clock
	job     Job
	spec    *pb.JobSpec
	runID   string
	classes int

	lis     net.Listener
	server  *grpc.Server
	dial    []grpc.DialOption // network and credentials for connections to workers
	health  *health.Server
	cluster membership.Cluster
	addr    string

	mu      sync.Mutex
	conns   map[string]*workerConn
	queue   []queued      // events not yet fed to the core
	notify  chan struct{} // signalled when queue grows
	fetched map[string]*snapshot
	reports map[string]*pb.StepReport // of the attempt in progress

	// Owned by the training loop (one goroutine).
	core    *core.Core
	op      uint64 // the operation in progress; events of older ones are dropped
	state   *snapshot
	evalNet *model.Network
	buf     engine.Buffers
	stats   Stats
	// lastCompute and lastAllreduce are the slowest worker's times in the
	// last committed step (under mu).
	lastCompute, lastAllreduce time.Duration
	batch                      []int
	lr                         float64 // the learning rate of the step in progress
	waitLog                    time.Time
}

// queued is an event for the core, tagged with the operation it belongs to
// (0: membership, valid in any operation).
type queued struct {
	op uint64
	ev core.Event
}

// snapshot is a copy of the replicas' state after `steps` committed updates.
type snapshot struct {
	steps  int64
	params []float32
	opt    *model.Optimizer
}

// Stats are running figures of the distributed run.
type Stats struct {
	Aborts           int
	RingGenerations  uint64
	BytesSentPerStep uint64 // by one worker in the last step
	ComputeSeconds   float64
	AllreduceSeconds float64
	// ExposedSeconds is the part of AllreduceSeconds not hidden behind
	// backward (buckets all-reduced during backward hide the rest).
	ExposedSeconds float64
	// RecoverySeconds adds up, over aborted steps, the time from the first
	// abort to the retried step's commit; LastRecovery is the latest one.
	RecoverySeconds float64
	LastRecovery    time.Duration
}

// pbService implements the Coordinator gRPC service.
type pbService struct {
	pb.UnimplementedCoordinatorServer
	c *Coordinator
}

// Start listens, starts the gRPC server and the gossip node.
func Start(ctx context.Context, cfg Config, j Job) (*Coordinator, error) {
	cfg.defaults()
	if err := j.Model.Validate(); err != nil {
		return nil, err
	}
	var rid [6]byte
	_, _ = rand.Read(rid[:])
	c := &Coordinator{
		cfg: cfg, log: cfg.Log, job: j, runID: hex.EncodeToString(rid[:]),
		conns: map[string]*workerConn{}, notify: make(chan struct{}, 1), clock: cfg.Clock,
		fetched: map[string]*snapshot{}, reports: map[string]*pb.StepReport{},
	}
	c.classes = j.Model.Outputs
	if c.classes == 1 {
		c.classes = 2
	}
	c.spec = &pb.JobSpec{RunId: c.runID, Model: protocol.ModelSpec(j.Model), Optimizer: protocol.OptimizerSpec(j.Optimizer), FrameBytes: uint32(cfg.FrameBytes),
		BucketBytes: uint32(max(cfg.BucketBytes, 0)), Wire: cfg.Wire.String(), Accumulate: uint32(max(j.Accumulate, 0))}
	if j.Exact.On() {
		if err := j.Exact.Validate(); err != nil {
			return nil, fmt.Errorf("exact reduction: %w", err)
		}
		if cfg.Wire != allreduce.WireF32 {
			return nil, fmt.Errorf("exact reduction sums integers on the ring; the %s wire rounds gradients and cannot carry them", cfg.Wire)
		}
		if cfg.SkipZeroInputs {
			// The columns are zero integers too, but the packing moves
			// float32 buckets; exact runs send the whole buffer.
			c.cfg.SkipZeroInputs = false
			c.log.Info("exact reduction: zero input columns stay on the wire (--skip-zero-inputs applies to the fast reduction)")
		}
		c.spec.ExactBlock, c.spec.ExactFracBits = uint32(j.Exact.Block), uint32(j.Exact.FracBits)
		c.spec.ExactMaxBlocks = uint32(max(j.ExactMaxBlocks, 1))
	}
	c.state = &snapshot{steps: j.OptState.Steps, params: slices.Clone(j.Params), opt: cloneOpt(j.OptState)}
	c.core = core.New(core.Config{
		MinWorkers: cfg.MinWorkers, MaxWorkers: cfg.MaxWorkers, CheckEvery: cfg.CheckEvery,
		MaxAttempts: cfg.MaxAttempts, StepTimeout: cfg.StepTimeout, ShardBlock: j.Exact.Block,
	}, j.OptState.Steps)
	evalNet, err := model.New(j.Model, 0)
	if err != nil {
		return nil, err
	}
	evalNet.SetThreads(cfg.Threads)
	c.evalNet = evalNet

	lis, err := cfg.Network.Listen(cfg.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("--grpc-addr %s: %w", cfg.GRPCAddr, err)
	}
	c.lis = lis
	c.addr, err = protocol.Advertised(cfg.Advertise, lis.Addr().String())
	if err != nil {
		lis.Close()
		return nil, err
	}
	tlsServer, err := cfg.TLS.ServerOptions()
	if err != nil {
		lis.Close()
		return nil, fmt.Errorf("tls: %w", err)
	}
	dialTLS, err := cfg.TLS.DialOption()
	if err != nil {
		lis.Close()
		return nil, fmt.Errorf("tls: %w", err)
	}
	c.dial = append([]grpc.DialOption{dialTLS,
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(protocol.MaxMessageBytes), grpc.MaxCallSendMsgSize(protocol.MaxMessageBytes))},
		cfg.Network.DialOptions()...)
	c.server = grpc.NewServer(append(tlsServer, grpc.MaxRecvMsgSize(protocol.MaxMessageBytes))...)
	pb.RegisterCoordinatorServer(c.server, &pbService{c: c})
	c.health = health.NewServer()
	healthpb.RegisterHealthServer(c.server, c.health)
	go func() {
		if err := c.server.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			c.log.Error("grpc server stopped", "err", err)
		}
	}()
	cl, err := cfg.StartCluster(ctx, membership.Config{
		Name: "coordinator-" + c.runID, BindAddr: cfg.GossipAddr, Advertise: cfg.GossipAdvertise,
		Meta:      membership.Meta{Role: membership.RoleCoordinator, GRPCAddr: c.addr, Protocol: protocol.Version, ID: "coordinator-" + c.runID},
		SecretKey: cfg.GossipKey, Logger: c.log, Fast: cfg.GossipFast,
		AcceptMeta: func(m membership.Meta) error { return protocol.CheckVersion("member "+m.ID, m.Protocol) },
	})
	if err != nil {
		c.server.Stop()
		return nil, fmt.Errorf("start gossip: %w", err)
	}
	c.cluster = cl
	go c.watchMembers(ctx)
	c.log.Info("coordinator started", "run", c.runID, "grpc_addr", c.addr, "gossip_addr", cl.Self().GossipAddr,
		"min_workers", cfg.MinWorkers, "max_workers", cfg.MaxWorkers)
	return c, nil
}

// GossipAddr returns the address workers join.
func (c *Coordinator) GossipAddr() string { return c.cluster.Self().GossipAddr }

// Addr returns the coordinator's gRPC address.
func (c *Coordinator) Addr() string { return c.addr }

// Stats returns the run's figures so far.
func (c *Coordinator) Stats() Stats { return c.stats }

// Close stops the coordinator's servers and leaves the cluster.
func (c *Coordinator) Close() {
	c.health.Shutdown()
	lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = c.cluster.Leave(lctx)
	c.server.Stop()
	c.mu.Lock()
	for _, w := range c.conns {
		_ = w.conn.Close()
	}
	c.mu.Unlock()
}

// Join implements pb.CoordinatorServer: the admission checks, then the
// worker is the core's to place.
func (s *pbService) Join(_ context.Context, req *pb.JoinRequest) (*pb.JoinResponse, error) {
	c := s.c
	refuse := func(err error) error {
		c.log.Warn("refused worker", "worker", req.WorkerId, "reason", err.Error())
		return protocol.Errorf(codes.FailedPrecondition, protocol.ReasonMismatch, "%v", err)
	}
	if err := protocol.CheckVersion("worker "+req.WorkerId, req.ProtocolVersion); err != nil {
		return nil, refuse(err)
	}
	if err := protocol.CheckModel("worker "+req.WorkerId, c.job.Model, req.ExpectModel); err != nil {
		return nil, refuse(err)
	}
	if req.WorkerId == "" || req.GrpcAddr == "" {
		return nil, protocol.Errorf(codes.InvalidArgument, protocol.ReasonBadRequest, "join needs a worker id and a gRPC address")
	}
	conn, err := grpc.NewClient(req.GrpcAddr, c.dial...)
	if err != nil {
		return nil, protocol.Errorf(codes.InvalidArgument, protocol.ReasonBadRequest, "cannot dial %s: %v", req.GrpcAddr, err)
	}
	w := &workerConn{id: req.WorkerId, addr: req.GrpcAddr, conn: conn, client: pb.NewWorkerClient(conn), health: healthpb.NewHealthClient(conn)}
	c.mu.Lock()
	if old, ok := c.conns[w.id]; ok {
		_ = old.conn.Close()
	}
	c.conns[w.id] = w
	n := len(c.conns)
	c.mu.Unlock()
	c.post(0, core.MemberJoined{ID: w.id, Addr: w.addr})
	c.log.Info("worker joined", "worker", w.id, "grpc_addr", w.addr, "workers_known", n)
	c.observe(EventJoined, w.id, -1, w.addr)
	c.cfg.Metrics.MembershipChange(metrics.KindJoin)
	return &pb.JoinResponse{Job: c.spec}, nil
}

// watchMembers turns gossip events about workers into core events.
func (c *Coordinator) watchMembers(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-c.cluster.Events():
			if !ok {
				return
			}
			if ev.Member.Meta.Role != membership.RoleWorker {
				continue
			}
			id, addr := ev.Member.Meta.ID, ev.Member.Meta.GRPCAddr
			switch ev.Kind {
			case membership.EventJoin, membership.EventUpdate:
				c.post(0, core.MemberBack{ID: id, Addr: addr})
			case membership.EventLeave:
				c.post(0, core.MemberLeft{ID: id, Addr: addr, Failed: ev.Failed})
				c.log.Warn("worker left the cluster", "worker", id, "failed", ev.Failed)
				kind, okind := metrics.KindLeave, EventLeft
				if ev.Failed {
					kind, okind = metrics.KindFail, EventFailed
				}
				c.observe(okind, id, -1, addr)
				c.cfg.Metrics.MembershipChange(kind)
				c.cfg.Metrics.ForgetWorker(id)
			}
		}
	}
}

// post queues an event for the core.
func (c *Coordinator) post(op uint64, ev core.Event) {
	c.mu.Lock()
	c.queue = append(c.queue, queued{op: op, ev: ev})
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// take returns the queued events of the current operation and membership.
func (c *Coordinator) take() []core.Event {
	c.mu.Lock()
	q := c.queue
	c.queue = nil
	c.mu.Unlock()
	evs := make([]core.Event, 0, len(q))
	for _, e := range q {
		if e.op == 0 || e.op == c.op {
			evs = append(evs, e.ev)
		}
	}
	return evs
}

func (c *Coordinator) conn(id string) (*workerConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.conns[id]
	if !ok {
		return nil, fmt.Errorf("worker %s has no connection", id)
	}
	return w, nil
}

// ErrStateLost means that no worker holds the run's current state any more.
var ErrStateLost = core.ErrStateLost

func (c *Coordinator) fetchState(ctx context.Context, w *workerConn) (*snapshot, error) {
	stream, err := w.client.SaveState(ctx, &pb.SaveStateRequest{RunId: c.runID})
	if err != nil {
		return nil, fmt.Errorf("save state from %s: %w", w.id, err)
	}
	first, err := stream.Recv()
	if err != nil {
		return nil, fmt.Errorf("save state from %s: %w", w.id, err)
	}
	opt := cloneOpt(c.job.OptState)
	st, err := protocol.ReceiveState(first, stream.Recv, len(c.job.Params), len(opt.State))
	if err != nil {
		return nil, fmt.Errorf("save state from %s: %w", w.id, err)
	}
	copy(opt.State, st.Opt)
	opt.Steps = int64(st.Header.OptimizerSteps)
	return &snapshot{steps: opt.Steps, params: st.Params, opt: opt}, nil
}

func (c *Coordinator) loadState(ctx context.Context, w *workerConn, s *snapshot) error {
	stream, err := w.client.LoadState(ctx)
	if err != nil {
		return fmt.Errorf("load state into %s: %w", w.id, err)
	}
	if err := protocol.SendState(ctx, stream.Send, c.runID, c.spec, s.params, s.opt); err != nil {
		return fmt.Errorf("load state into %s: %w", w.id, err)
	}
	ack, err := stream.CloseAndRecv()
	if err != nil {
		return fmt.Errorf("load state into %s: %w", w.id, err)
	}
	if want := model.Checksum(s.params); ack.Checksum != want {
		return fmt.Errorf("load state into %s: checksum %08x, want %08x: %w", w.id, ack.Checksum, want, protocol.ErrBadChecksum)
	}
	return nil
}

func cloneOpt(o *model.Optimizer) *model.Optimizer {
	return &model.Optimizer{Config: o.Config, Steps: o.Steps, State: slices.Clone(o.State)}
}

var _ train.Executor = (*Coordinator)(nil)
