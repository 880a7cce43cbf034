// Package worker is a training worker: it holds a model replica, computes the
// gradient sum of the shard the coordinator sends it for every step, sums it
// with the other workers' around the ring (pkg/allreduce over gRPC) and
// applies the update when the coordinator commits the step. It needs no data
// on disk: the coordinator ships every shard.
package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
	"github.com/ringtrain/ringtrain/pkg/allreduce/grpcring"
	"github.com/ringtrain/ringtrain/pkg/allreduce/shmring"
	"github.com/ringtrain/ringtrain/pkg/membership"
	"github.com/ringtrain/ringtrain/pkg/metrics"
	"github.com/ringtrain/ringtrain/pkg/protocol"
	"github.com/ringtrain/ringtrain/pkg/rpcnet"
	"github.com/ringtrain/ringtrain/pkg/tlsutil"
	pb "github.com/ringtrain/ringtrain/proto/ringtrain/v1"
)

// Config configures a worker.
type Config struct {
	// ID names the worker uniquely (default: host name plus a random suffix).
	ID string
	// GRPCAddr is the listen address of the worker's gRPC server (port 0: any).
	GRPCAddr string
	// Advertise is the gRPC address others dial (default: derived from the
	// listener; an unspecified host becomes the host name).
	Advertise string
	// GossipAddr is the memberlist bind address (port 0: any).
	GossipAddr string
	// GossipAdvertise is the gossip address others should use (optional).
	GossipAdvertise string
	// Join lists gossip addresses of members to join (one is enough).
	Join []string
	// ExpectModel is the canonical model configuration this worker accepts
	// (model.Config.String); empty accepts the coordinator's.
	ExpectModel string
	// ProtocolVersion overrides protocol.Version (tests of mismatches only).
	ProtocolVersion uint32
	// Gossip tunes memberlist timing (zero: LAN defaults).
	GossipFast bool // memberlist timings for loopback tests
	// RingShmDir, when set, is where the worker makes its shared-memory
	// receive segment for ring neighbours on the same host (see
	// pkg/allreduce/shmring); neighbours without one, or on other hosts,
	// use the Unix socket or TCP. Empty: no shared memory.
	RingShmDir string
	// RingSocketDir, when set, is where the worker also listens on a Unix
	// socket for ring neighbours on the same host (cheaper than loopback
	// TCP); neighbours find it by the worker's advertised address.
	RingSocketDir string
	// TLS enables mutual TLS on the worker's server and its connections.
	TLS tlsutil.Config
	// Metrics receives the worker's figures (nil: none).
	Metrics *metrics.Worker
	// GossipKey enables gossip encryption.
	GossipKey []byte
	// Threads is the engine's thread count (0 or 1: one); results do not
	// depend on it.
	Threads int
	// Log receives the worker's logs.
	Log *slog.Logger

	// Seams for tests (nil: the real thing). Network carries the gRPC
	// servers and clients (default TCP); StartCluster starts the gossip
	// member (default membership.Start); Ring connects to the right ring
	// neighbour (default the gRPC ring service on the worker's server).
	Network      rpcnet.Network
	StartCluster func(context.Context, membership.Config) (membership.Cluster, error)
	Ring         RingNetwork
	// ComputeDelay slows the worker on purpose: it is added to every
	// shard's compute, before the all-reduce (tests of straggler detection).
	ComputeDelay time.Duration
}

// RingNetwork connects a worker to its ring neighbours for one ring
// generation: the ring transport factory. The transport sends to the
// worker at rightAddr and receives from the one at leftAddr (both as
// advertised). A new transport (shared memory, say) is added by
// implementing it, without editing the worker.
type RingNetwork interface {
	Connect(ctx context.Context, leftAddr, rightAddr string, generation uint64) (allreduce.Transport, error)
}

// grpcRing is the default RingNetwork: the gRPC ring service.
type grpcRing struct {
	svc  *grpcring.Service
	dial []grpc.DialOption
}

func (g grpcRing) Connect(ctx context.Context, _, right string, generation uint64) (allreduce.Transport, error) {
	return g.svc.Connect(ctx, right, generation, g.dial...)
}

// StartGossip is the default Config.StartCluster.
func StartGossip(ctx context.Context, c membership.Config) (membership.Cluster, error) {
	return membership.Start(ctx, c)
}

// Worker is a running worker.
type Worker struct {
	cfg     Config
	log     *slog.Logger
	lis     net.Listener
	server  *grpc.Server
	health  *health.Server
	ring    *grpcring.Service
	shmNet  *shmring.Network // nil without shared memory
	shmSeg  *shmring.Segment
	svc     *service
	cluster membership.Cluster
	addr    string

	dial []grpc.DialOption // network and transport credentials for outgoing connections

	joined chan struct{}
	once   sync.Once
}

// ErrRefused wraps the coordinator's refusal of this worker.
var ErrRefused = errors.New("refused by the coordinator")

// Start listens, starts the gRPC server and joins the gossip cluster. Join
// the run with Run.
func Start(ctx context.Context, cfg Config) (*Worker, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.ID == "" {
		cfg.ID = defaultID()
	}
	if cfg.ProtocolVersion == 0 {
		cfg.ProtocolVersion = protocol.Version
	}
	if cfg.Network == nil {
		cfg.Network = rpcnet.TCP{}
	}
	if cfg.StartCluster == nil {
		cfg.StartCluster = StartGossip
	}
	log := cfg.Log.With("worker", cfg.ID)
	lis, err := cfg.Network.Listen(cfg.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("--grpc-addr %s: %w", cfg.GRPCAddr, err)
	}
	addr, err := protocol.Advertised(cfg.Advertise, lis.Addr().String())
	if err != nil {
		lis.Close()
		return nil, fmt.Errorf("--advertise: %w", err)
	}
	w := &Worker{cfg: cfg, log: log, lis: lis, addr: addr, joined: make(chan struct{})}
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
	w.dial = append([]grpc.DialOption{dialTLS}, cfg.Network.DialOptions()...)
	w.ring = grpcring.NewService(grpcring.Options{MaxFrameBytes: protocol.MaxFrameBytes, SocketDir: cfg.RingSocketDir})
	ring := cfg.Ring
	if ring == nil {
		ring = grpcRing{svc: w.ring, dial: w.dial}
		if cfg.RingShmDir != "" {
			if seg, err := shmring.Listen(cfg.RingShmDir, addr); err != nil {
				log.Warn("no shared-memory ring for co-located neighbours; they will use the Unix socket or TCP", "dir", cfg.RingShmDir, "err", err)
			} else {
				w.shmSeg, w.shmNet = seg, shmring.NewNetwork(cfg.RingShmDir, seg, ring)
				ring = w.shmNet
			}
		}
	}
	opts := append(w.ring.ServerOptions(), grpc.MaxRecvMsgSize(protocol.MaxMessageBytes))
	opts = append(opts, tlsServer...)
	w.server = grpc.NewServer(opts...)
	w.svc = &service{log: log, self: func() string { return w.addr }, ring: ring, rep: &replica{}, clock: time.Now,
		expect: cfg.ExpectModel, metrics: cfg.Metrics, threads: max(cfg.Threads, 1), delay: cfg.ComputeDelay}
	pb.RegisterWorkerServer(w.server, w.svc)
	w.ring.Register(w.server)
	w.health = health.NewServer()
	w.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(w.server, w.health)
	go func() {
		if err := w.server.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			log.Error("grpc server stopped", "err", err)
		}
	}()
	if cfg.RingSocketDir != "" {
		if local, err := w.ring.ListenLocal(addr); err != nil {
			log.Warn("no Unix socket for co-located ring neighbours; they will use TCP", "dir", cfg.RingSocketDir, "err", err)
		} else {
			go func() { _ = w.server.Serve(local) }()
		}
	}
	cl, err := cfg.StartCluster(ctx, membership.Config{
		Name: cfg.ID, BindAddr: cfg.GossipAddr, Advertise: cfg.GossipAdvertise, Join: cfg.Join,
		Meta:      membership.Meta{Role: membership.RoleWorker, GRPCAddr: addr, Protocol: cfg.ProtocolVersion, ID: cfg.ID},
		SecretKey: cfg.GossipKey, Logger: log, Fast: cfg.GossipFast,
	})
	if err != nil {
		w.server.Stop()
		return nil, fmt.Errorf("join gossip: %w", err)
	}
	w.cluster = cl
	log.Info("worker started", "grpc_addr", addr, "gossip_addr", cl.Self().GossipAddr)
	return w, nil
}

// Addr returns the worker's advertised gRPC address.
func (w *Worker) Addr() string { return w.addr }

// ID returns the worker's identity.
func (w *Worker) ID() string { return w.cfg.ID }

// Joined is closed once the coordinator has accepted the worker.
func (w *Worker) Joined() <-chan struct{} { return w.joined }

// Run finds the coordinator through gossip, joins the run and serves until
// ctx is done; then it leaves the cluster gracefully and stops. It returns an
// error wrapping ErrRefused when the coordinator refuses the worker.
func (w *Worker) Run(ctx context.Context) error {
	defer w.stop()
	for {
		coord, err := w.join(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		// Stay in the run while its coordinator is a member; when it leaves
		// (a restart, a crash), join whichever coordinator comes next.
		if !w.waitGone(ctx, coord) {
			return nil
		}
		w.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		w.log.Warn("the coordinator left the cluster; waiting for a coordinator", "coordinator", coord)
	}
}

// idleRejoin is how long a joined worker waits without hearing from the
// coordinator before it re-syncs its membership view.
const idleRejoin = 5 * time.Second

// waitGone waits until the member named name is no longer in the cluster
// (true) or ctx is done (false).
func (w *Worker) waitGone(ctx context.Context, name string) bool {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	w.svc.touch()
	var lastRejoin time.Time
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
		// A worker that gossip declared dead (a partition that healed, a
		// long pause) hears from nobody: the others stopped probing it. It
		// learns of its death, and refutes it, at the next state exchange,
		// so it asks for one when the coordinator has been silent a while.
		idle := time.Since(time.Unix(0, w.svc.lastRequest.Load()))
		if idle > idleRejoin && time.Since(lastRejoin) > idleRejoin {
			lastRejoin = time.Now()
			if err := w.cluster.Rejoin(); err != nil {
				w.log.Debug("rejoin while idle", "err", err)
			}
		}
		present := false
		for _, m := range w.cluster.Members() {
			if m.Name == name {
				present = true
				break
			}
		}
		if !present {
			return true
		}
	}
}

// join looks for the coordinator among the members and asks it to accept
// this worker, retrying while the coordinator is not there or not reachable.
func (w *Worker) join(ctx context.Context) (string, error) {
	backoff := 50 * time.Millisecond
	var lastErr error
	logged := time.Time{}
	for {
		coord, ok := w.findCoordinator()
		if ok {
			err := w.joinAt(ctx, coord)
			if err == nil {
				return coord.Name, nil
			}
			if errors.Is(err, ErrRefused) {
				return "", err
			}
			lastErr = err
		} else {
			lastErr = errors.New("no coordinator among the gossip members yet")
			// A restarted coordinator runs a new cluster of one at the join
			// address: contact it again to merge the clusters.
			if err := w.cluster.Rejoin(); err != nil {
				lastErr = fmt.Errorf("%w; %w", lastErr, err)
			}
		}
		if time.Since(logged) > 5*time.Second {
			w.log.Info("waiting for the coordinator", "reason", lastErr)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (w *Worker) findCoordinator() (membership.Member, bool) {
	for _, m := range w.cluster.Members() {
		if m.Meta.Role == membership.RoleCoordinator {
			return m, true
		}
	}
	return membership.Member{}, false
}

func (w *Worker) joinAt(ctx context.Context, coord membership.Member) error {
	conn, err := grpc.NewClient(coord.Meta.GRPCAddr, w.dial...)
	if err != nil {
		return fmt.Errorf("dial coordinator %s: %w", coord.Meta.GRPCAddr, err)
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := pb.NewCoordinatorClient(conn).Join(cctx, &pb.JoinRequest{
		WorkerId: w.cfg.ID, GrpcAddr: w.addr, ProtocolVersion: w.cfg.ProtocolVersion, ExpectModel: w.cfg.ExpectModel,
	})
	if err != nil {
		if protocol.ReasonOf(err) == protocol.ReasonMismatch {
			w.log.Error("the coordinator refused this worker", "reason", status.Convert(err).Message())
			return fmt.Errorf("%w: %s", ErrRefused, status.Convert(err).Message())
		}
		return fmt.Errorf("join coordinator %s: %w", coord.Meta.GRPCAddr, err)
	}
	if err := w.svc.setJob(resp.Job.GetRunId(), resp.Job); err != nil {
		return fmt.Errorf("%w: the coordinator's job is unusable: %v", ErrRefused, err)
	}
	w.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	w.log.Info("joined the run", "run", resp.Job.GetRunId(), "coordinator", coord.Meta.GRPCAddr)
	w.once.Do(func() { close(w.joined) })
	return nil
}

// stop leaves the gossip cluster gracefully, so that the coordinator re-forms
// the ring without waiting for failure detection, then stops the servers.
func (w *Worker) stop() {
	w.health.Shutdown()
	lctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := w.cluster.Leave(lctx); err != nil {
		w.log.Warn("leave gossip", "err", err)
	}
	_ = w.ring.Close()
	w.closeShm()
	stopped := make(chan struct{})
	go func() { w.server.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		w.server.Stop()
	}
	w.log.Info("worker stopped")
}

// closeShm unmaps the shared-memory ring and removes this worker's segment.
func (w *Worker) closeShm() {
	if w.shmNet != nil {
		_ = w.shmNet.Close()
		_ = w.shmSeg.Close()
	}
}

// Crash stops the worker's servers abruptly and leaves its gossip member
// as it is: a crash that failure detection has not noticed yet, so the
// coordinator learns of it from a failed RPC. For tests.
func (w *Worker) Crash() {
	w.server.Stop()
	_ = w.ring.Close()
	w.closeShm()
}

// Kill stops the worker abruptly, without leaving the cluster: a crash, for
// tests of failure handling.
func (w *Worker) Kill() {
	_ = w.cluster.Shutdown()
	w.server.Stop()
	_ = w.ring.Close()
	w.closeShm() // a dead process's segment is stale to its neighbours
}

func defaultID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "worker"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(h) + "-" + hex.EncodeToString(b[:])
}
