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
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/membership"
	"github.com/ringtrain/ringtrain/pkg/metrics"
	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/protocol"
	"github.com/ringtrain/ringtrain/pkg/shard"
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
	// between MinStepTimeout and StepTimeout.
	StepTimeout time.Duration
	// FrameBytes is the all-reduce frame size (0: the allreduce default).
	FrameBytes int
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
	Log     *slog.Logger
}

func (c *Config) defaults() {
	if c.MinWorkers < 1 {
		c.MinWorkers = 1
	}
	if c.StepTimeout <= 0 {
		c.StepTimeout = 60 * time.Second
	}
	if c.FrameBytes <= 0 {
		c.FrameBytes = allreduce.DefaultFrameBytes
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 20
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Job is what the coordinator trains: the data and the initial state.
type Job struct {
	Model     model.Config
	Optimizer model.OptimizerConfig
	Train     *data.Dataset
	Params    []float32        // initial parameters
	OptState  *model.Optimizer // initial optimizer state
}

// member is an admitted worker.
type member struct {
	id, addr string
	conn     *grpc.ClientConn
	client   pb.WorkerClient
	health   healthpb.HealthClient
	synced   bool // holds the run's current state
	gone     bool // left or failed the gossip cluster, or replaced by a rejoin

	// A worker whose RPC failed is suspect: it is left out of rings until
	// suspectUntil, with a backoff that grows with consecutive failures.
	// Gossip decides whether it is gone for good.
	failures     int
	suspectUntil time.Time
}

// Coordinator runs the distributed side of a training job.
type Coordinator struct {
	cfg     Config
	log     *slog.Logger
	job     Job
	spec    *pb.JobSpec
	runID   string
	classes int

	lis     net.Listener
	server  *grpc.Server
	dial    grpc.DialOption // transport credentials for connections to workers
	health  *health.Server
	cluster membership.Cluster
	addr    string

	mu      sync.Mutex
	members map[string]*member
	changed chan struct{} // closed and replaced on every membership change

	// Owned by the training loop (one goroutine).
	ring       []*member
	generation uint64
	world      int
	state      *snapshot // the newest state known to the coordinator
	evalNet    *model.Network
	x          []float32
	labels     []int32
	stats      Stats
	committed  int64         // optimizer steps the ring holds (initial steps + committed)
	stepEWMA   time.Duration // running average of successful attempts' durations
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
		members: map[string]*member{}, changed: make(chan struct{}),
	}
	c.classes = j.Model.Outputs
	if c.classes == 1 {
		c.classes = 2
	}
	c.spec = &pb.JobSpec{RunId: c.runID, Model: protocol.ModelSpec(j.Model), Optimizer: protocol.OptimizerSpec(j.Optimizer), FrameBytes: uint32(cfg.FrameBytes)}
	c.state = &snapshot{steps: j.OptState.Steps, params: slices.Clone(j.Params), opt: cloneOpt(j.OptState)}
	c.committed = j.OptState.Steps
	evalNet, err := model.New(j.Model, 0)
	if err != nil {
		return nil, err
	}
	c.evalNet = evalNet

	lis, err := net.Listen("tcp", cfg.GRPCAddr)
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
	if c.dial, err = cfg.TLS.DialOption(); err != nil {
		lis.Close()
		return nil, fmt.Errorf("tls: %w", err)
	}
	c.server = grpc.NewServer(append(tlsServer, grpc.MaxRecvMsgSize(protocol.MaxMessageBytes))...)
	pb.RegisterCoordinatorServer(c.server, &pbService{c: c})
	c.health = health.NewServer()
	healthpb.RegisterHealthServer(c.server, c.health)
	go func() {
		if err := c.server.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			c.log.Error("grpc server stopped", "err", err)
		}
	}()
	cl, err := membership.Start(ctx, membership.Config{
		Name: "coordinator-" + c.runID, BindAddr: cfg.GossipAddr, Advertise: cfg.GossipAdvertise,
		Meta:      membership.Meta{Role: membership.RoleCoordinator, GRPCAddr: c.addr, Protocol: protocol.Version, ID: "coordinator-" + c.runID},
		SecretKey: cfg.GossipKey, Logger: c.log, Fast: cfg.GossipFast,
		AcceptMeta: func(m membership.Meta) error {
			if m.Protocol != protocol.Version {
				return fmt.Errorf("member %s speaks protocol version %d, this coordinator speaks %d", m.ID, m.Protocol, protocol.Version)
			}
			return nil
		},
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
	for _, m := range c.members {
		_ = m.conn.Close()
	}
	c.mu.Unlock()
}

// Join implements pb.CoordinatorServer.
func (s *pbService) Join(_ context.Context, req *pb.JoinRequest) (*pb.JoinResponse, error) {
	c := s.c
	if req.ProtocolVersion != protocol.Version {
		msg := fmt.Sprintf("worker %s speaks protocol version %d, the coordinator speaks %d", req.WorkerId, req.ProtocolVersion, protocol.Version)
		c.log.Warn("refused worker", "worker", req.WorkerId, "reason", msg)
		return nil, status.Error(codes.FailedPrecondition, msg)
	}
	if want := c.job.Model.String(); req.ExpectModel != "" && req.ExpectModel != want {
		msg := fmt.Sprintf("worker %s was started for another model: %s", req.WorkerId, model.DiffStrings(want, req.ExpectModel))
		c.log.Warn("refused worker", "worker", req.WorkerId, "reason", msg)
		return nil, status.Error(codes.FailedPrecondition, msg)
	}
	if req.WorkerId == "" || req.GrpcAddr == "" {
		return nil, status.Error(codes.InvalidArgument, "join needs a worker id and a gRPC address")
	}
	conn, err := grpc.NewClient(req.GrpcAddr, c.dial,
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(protocol.MaxMessageBytes), grpc.MaxCallSendMsgSize(protocol.MaxMessageBytes)))
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "cannot dial %s: %v", req.GrpcAddr, err)
	}
	m := &member{id: req.WorkerId, addr: req.GrpcAddr, conn: conn, client: pb.NewWorkerClient(conn), health: healthpb.NewHealthClient(conn)}
	c.mu.Lock()
	if old, ok := c.members[m.id]; ok {
		old.gone = true
		_ = old.conn.Close()
	}
	c.members[m.id] = m
	c.signalLocked()
	n := c.liveLocked()
	c.mu.Unlock()
	c.log.Info("worker joined", "worker", m.id, "grpc_addr", m.addr, "workers", n)
	c.cfg.Metrics.MembershipChange(metrics.KindJoin)
	return &pb.JoinResponse{Job: c.spec}, nil
}

// watchMembers marks workers that leave or fail the gossip cluster as gone.
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
			if ev.Kind == membership.EventJoin || ev.Kind == membership.EventUpdate {
				// A worker that was declared dead (a pause, a partition) and
				// came back is admitted again, with fresh state.
				c.mu.Lock()
				m, ok := c.members[ev.Member.Meta.ID]
				revived := ok && m.gone && m.addr == ev.Member.Meta.GRPCAddr
				if revived {
					m.gone, m.synced, m.failures, m.suspectUntil = false, false, 0, time.Time{}
					c.signalLocked()
				}
				c.mu.Unlock()
				if revived {
					c.log.Info("worker is back in the cluster; it will reload the state", "worker", m.id)
				}
				continue
			}
			if ev.Kind != membership.EventLeave {
				continue
			}
			c.mu.Lock()
			m, ok := c.members[ev.Member.Meta.ID]
			if ok && m.addr == ev.Member.Meta.GRPCAddr && !m.gone {
				m.gone = true
				c.signalLocked()
			}
			n := c.liveLocked()
			c.mu.Unlock()
			if ok {
				c.log.Warn("worker left the cluster", "worker", ev.Member.Meta.ID, "failed", ev.Failed, "workers", n)
				kind := metrics.KindLeave
				if ev.Failed {
					kind = metrics.KindFail
				}
				c.cfg.Metrics.MembershipChange(kind)
				c.cfg.Metrics.ForgetWorker(ev.Member.Meta.ID)
			}
		}
	}
}

func (c *Coordinator) signalLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *Coordinator) liveLocked() int {
	n := 0
	for _, m := range c.members {
		if !m.gone {
			n++
		}
	}
	return n
}

// formRing waits for enough workers, brings newcomers up to date and returns
// the ring for the next attempt at a step. A new generation is started when
// the ring's members change or force is set (after an abort).
func (c *Coordinator) formRing(ctx context.Context, force bool) ([]*member, error) {
	var last time.Time
	for {
		c.mu.Lock()
		var live []*member
		now := time.Now()
		for _, m := range c.members {
			if !m.gone && !now.Before(m.suspectUntil) {
				live = append(live, m)
			}
		}
		changed := c.changed
		c.mu.Unlock()
		if len(live) >= c.cfg.MinWorkers {
			slices.SortFunc(live, func(a, b *member) int { return cmp.Compare(a.id, b.id) })
			// Workers that already hold the state go first, so that spares
			// beyond --max-workers are the newest.
			slices.SortStableFunc(live, func(a, b *member) int { return boolOrder(b.synced, a.synced) })
			if c.cfg.MaxWorkers > 0 && len(live) > c.cfg.MaxWorkers {
				live = live[:c.cfg.MaxWorkers]
			}
			slices.SortFunc(live, func(a, b *member) int { return cmp.Compare(a.id, b.id) })
			ring, err := c.admit(ctx, live, force)
			if err == nil {
				return ring, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, ErrStateLost) {
				return nil, err
			}
			c.log.Warn("cannot form the ring", "err", err)
		} else if time.Since(last) > 5*time.Second {
			c.log.Info("waiting for workers", "ready", len(live), "min_workers", c.cfg.MinWorkers,
				"hint", "start workers with: worker --join "+c.cluster.Self().GossipAddr+" (or run the coordinator with --local-workers N)")
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		case <-time.After(time.Second):
		}
	}
}

// admit loads the current state into the members that lack it and makes
// them the ring.
func (c *Coordinator) admit(ctx context.Context, live []*member, force bool) ([]*member, error) {
	same := len(live) == len(c.ring)
	for i := range live {
		if same && live[i] != c.ring[i] {
			same = false
		}
	}
	if same && !force {
		return c.ring, nil
	}
	var fresh []*member
	c.mu.Lock()
	for _, m := range live {
		if !m.synced {
			fresh = append(fresh, m)
		}
	}
	c.mu.Unlock()
	if len(fresh) > 0 {
		if err := c.refreshState(ctx); err != nil {
			return nil, err
		}
		for _, m := range fresh {
			if err := c.loadState(ctx, m); err != nil {
				c.suspect(m, err)
				return nil, err
			}
		}
	}
	c.generation++
	c.stats.RingGenerations = c.generation
	c.cfg.Metrics.RingGeneration(c.generation)
	c.cfg.Metrics.WorldSize(len(live))
	c.ring = live
	ids := make([]string, len(live))
	for i, m := range live {
		ids[i] = m.id
	}
	c.log.Info("ring formed", "generation", c.generation, "workers", len(live), "ring", strings.Join(ids, ","))
	return live, nil
}

// refreshState makes c.state the replicas' current state, fetching it from a
// worker of the current ring if the coordinator's copy is older.
func (c *Coordinator) refreshState(ctx context.Context) error {
	var errs []error
	for _, m := range c.ring {
		if !c.ready(m) {
			continue
		}
		s, err := c.fetchState(ctx, m)
		if err == nil && s.steps != c.committed {
			err = fmt.Errorf("worker %s holds %d updates, the run has committed %d", m.id, s.steps, c.committed)
		}
		if err == nil {
			c.state = s
			return nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 && c.state.steps == c.committed {
		return nil // no ring yet: c.state is the newest there is
	}
	// Every ring member is gone or suspect (for instance every commit of
	// the last step failed). A live worker that applied the last commit
	// still holds the state: look for one.
	c.mu.Lock()
	var others []*member
	for _, m := range c.members {
		if !m.gone {
			others = append(others, m)
		}
	}
	c.mu.Unlock()
	for _, m := range others {
		s, err := c.fetchState(ctx, m)
		if err == nil && s.steps == c.committed {
			c.state = s
			return nil
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return fmt.Errorf("%w: no live worker holds the state after %d updates (%v); restart the coordinator to resume from the newest checkpoint",
		ErrStateLost, c.committed, errors.Join(errs...))
}

// ErrStateLost means that no worker holds the run's current state any more.
var ErrStateLost = errors.New("training state lost")

func (c *Coordinator) fetchState(ctx context.Context, m *member) (*snapshot, error) {
	if c.state != nil && c.state.steps == c.committed {
		return c.state, nil
	}
	ctx, cancel := c.memberContext(ctx, []*member{m}, c.transferDeadline())
	defer cancel()
	stream, err := m.client.SaveState(ctx, &pb.SaveStateRequest{RunId: c.runID})
	if err != nil {
		return nil, fmt.Errorf("save state from %s: %w", m.id, err)
	}
	params := make([]float32, len(c.job.Params))
	opt := cloneOpt(c.job.OptState)
	buf := make([]float32, len(params)+len(opt.State))
	var header *pb.StateHeader
	next := uint64(0)
	for {
		ch, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("save state from %s: %w", m.id, err)
		}
		if header == nil {
			header = ch.Header
			if header == nil || header.ParamCount != uint64(len(params)) || header.OptimizerCount != uint64(len(opt.State)) {
				return nil, fmt.Errorf("save state from %s: unexpected header %v", m.id, header)
			}
		}
		n := uint64(len(ch.Data) / 4)
		if len(ch.Data)%4 != 0 || ch.Offset != next || next+n > uint64(len(buf)) {
			return nil, fmt.Errorf("save state from %s: chunk at %d of %d bytes does not fit", m.id, ch.Offset, len(ch.Data))
		}
		protocol.Floats(buf[next:next+n], ch.Data)
		next += n
	}
	if header == nil || next != uint64(len(buf)) {
		return nil, fmt.Errorf("save state from %s: got %d of %d values", m.id, next, len(buf))
	}
	copy(params, buf[:len(params)])
	copy(opt.State, buf[len(params):])
	opt.Steps = int64(header.OptimizerSteps)
	if sum := model.Checksum(params); sum != header.Checksum {
		return nil, fmt.Errorf("save state from %s: checksum %08x, header says %08x", m.id, sum, header.Checksum)
	}
	return &snapshot{steps: opt.Steps, params: params, opt: opt}, nil
}

func (c *Coordinator) loadState(ctx context.Context, m *member) error {
	ctx, cancel := c.memberContext(ctx, []*member{m}, c.transferDeadline())
	defer cancel()
	stream, err := m.client.LoadState(ctx)
	if err != nil {
		return fmt.Errorf("load state into %s: %w", m.id, err)
	}
	err = protocol.SendState(ctx, stream.Send, c.runID, c.spec, c.state.params, c.state.opt)
	if err != nil {
		return fmt.Errorf("load state into %s: %w", m.id, err)
	}
	ack, err := stream.CloseAndRecv()
	if err != nil {
		return fmt.Errorf("load state into %s: %w", m.id, err)
	}
	if want := model.Checksum(c.state.params); ack.Checksum != want {
		return fmt.Errorf("load state into %s: checksum %08x, want %08x", m.id, ack.Checksum, want)
	}
	c.mu.Lock()
	m.synced = true
	c.mu.Unlock()
	c.log.Info("worker brought up to date", "worker", m.id, "optimizer_steps", c.state.opt.Steps)
	return nil
}

// suspect leaves m out of the rings for a while after a failed RPC and
// makes it reload the state before it trains again.
func (c *Coordinator) suspect(m *member, err error) {
	c.mu.Lock()
	m.synced = false
	m.failures++
	backoff := min(250*time.Millisecond<<min(m.failures-1, 6), 10*time.Second)
	m.suspectUntil = time.Now().Add(backoff)
	c.signalLocked()
	c.mu.Unlock()
	c.log.Warn("worker suspect, left out of the ring", "worker", m.id, "failures", m.failures, "retry_in", backoff, "err", err)
}

// transferDeadline bounds a state transfer to or from one worker: 5 s, or
// ten times the recent step time when steps are slower, at most
// --step-timeout. A partitioned worker answers nothing, so without a short
// deadline a transfer to it would stall the run.
func (c *Coordinator) transferDeadline() time.Duration {
	return min(max(5*time.Second, 10*c.stepEWMA), c.cfg.StepTimeout)
}

// memberContext returns a context that ends after timeout, or as soon as
// gossip reports one of ms gone, with a cause that says which.
func (c *Coordinator) memberContext(ctx context.Context, ms []*member, timeout time.Duration) (context.Context, context.CancelFunc) {
	tctx, tcancel := context.WithTimeout(ctx, timeout)
	cctx, cancelCause := context.WithCancelCause(tctx)
	stop := c.watchRing(cctx, ms, cancelCause)
	return cctx, func() {
		stop()
		cancelCause(nil)
		tcancel()
	}
}

// ready reports whether m is live and holds the run's current state.
func (c *Coordinator) ready(m *member) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !m.gone && m.synced
}

func cloneOpt(o *model.Optimizer) *model.Optimizer {
	return &model.Optimizer{Config: o.Config, Steps: o.Steps, State: slices.Clone(o.State)}
}

func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

var _ train.Executor = (*Coordinator)(nil)

// shardsOf cuts batch into one contiguous shard per ring member.
func shardsOf(batch []int, n int) [][]int {
	rs := shard.Split(len(batch), n)
	out := make([][]int, n)
	for i, r := range rs {
		out[i] = batch[r.Start:r.End]
	}
	return out
}
