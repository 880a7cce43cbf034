package coordinator

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ringtrain/ringtrain/pkg/membership"
	"github.com/ringtrain/ringtrain/pkg/rpcnet"
	"github.com/ringtrain/ringtrain/pkg/worker"
)

// Cluster is a coordinator and its workers in one process on in-memory
// networks, in the spirit of hashicorp/raft's MakeCluster: gRPC (control
// plane and ring) runs over an rpcnet.Inmem, gossip through a
// membership.InmemHub, so nothing touches a socket and membership changes
// are delivered at once. Tests of the coordinator's behaviour use it; a
// smaller set runs over real gRPC and memberlist on port 0.
type Cluster struct {
	Coordinator *Coordinator
	Workers     []*worker.Worker
	Net         *rpcnet.Inmem
	Hub         *membership.InmemHub

	ctx     context.Context
	log     *slog.Logger
	cancels []context.CancelFunc
	dones   []chan struct{}
}

// MakeCluster starts a coordinator for job with cfg (its network and
// membership seams are replaced by in-memory ones) and n workers named
// w0, w1, ..., and waits until every worker has joined.
func MakeCluster(ctx context.Context, cfg Config, job Job, n int) (*Cluster, error) {
	cl := &Cluster{Net: rpcnet.NewInmem(), Hub: membership.NewInmemHub(), ctx: ctx, log: cfg.Log}
	cfg.Network, cfg.StartCluster = cl.Net, cl.Hub.Start
	cfg.GRPCAddr, cfg.GossipAddr = "127.0.0.1:0", "inmem"
	c, err := Start(ctx, cfg, job)
	if err != nil {
		return nil, err
	}
	cl.Coordinator = c
	for range n {
		if _, err := cl.AddWorker(""); err != nil {
			cl.Close()
			return nil, err
		}
	}
	return cl, nil
}

// AddWorker starts one more worker (id "" names it w<index>) and waits
// until it has joined.
func (cl *Cluster) AddWorker(id string) (*worker.Worker, error) {
	return cl.AddWorkerWith(id, nil)
}

// AddWorkerWith is AddWorker with the worker's configuration changed by
// tweak (nil: none) before it starts, e.g. to slow it down.
func (cl *Cluster) AddWorkerWith(id string, tweak func(*worker.Config)) (*worker.Worker, error) {
	i := len(cl.Workers)
	if id == "" {
		id = fmt.Sprintf("w%d", i)
	}
	wctx, cancel := context.WithCancel(cl.ctx)
	wcfg := worker.Config{
		ID: id, GRPCAddr: "127.0.0.1:0", Log: cl.log,
		Network: cl.Net, StartCluster: cl.Hub.Start,
	}
	if tweak != nil {
		tweak(&wcfg)
	}
	w, err := worker.Start(wctx, wcfg)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start worker %s: %w", id, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Run(wctx)
	}()
	cl.Workers = append(cl.Workers, w)
	cl.cancels = append(cl.cancels, cancel)
	cl.dones = append(cl.dones, done)
	select {
	case <-w.Joined():
		return w, nil
	case <-done:
		return nil, fmt.Errorf("worker %s stopped before it joined", id)
	case <-cl.ctx.Done():
		return nil, cl.ctx.Err()
	}
}

// Kill crashes worker i: no goodbye, its servers stop at once, and the hub
// does not report it (failure detection is slower than a failed RPC, as
// with real gossip): the coordinator learns of the crash when its next RPC
// to the worker fails. Cluster.Hub.Fail reports it, when a test needs that.
func (cl *Cluster) Kill(i int) { cl.Workers[i].Crash() }

// Stop stops worker i gracefully (it leaves the cluster) and waits for it.
func (cl *Cluster) Stop(i int) {
	cl.cancels[i]()
	<-cl.dones[i]
}

// Close stops every worker and the coordinator.
func (cl *Cluster) Close() {
	for i := range cl.cancels {
		cl.cancels[i]()
	}
	for _, d := range cl.dones {
		<-d
	}
	if cl.Coordinator != nil {
		cl.Coordinator.Close()
	}
}
