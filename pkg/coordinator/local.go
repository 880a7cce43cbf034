package coordinator

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringtrain/ringtrain/pkg/metrics"
	"github.com/ringtrain/ringtrain/pkg/tlsutil"
	"github.com/ringtrain/ringtrain/pkg/worker"
)

// LocalWorkers are workers run inside the coordinator's process for the
// single-node mode. Each has its own gRPC server and gossip node on
// 127.0.0.1 and talks over real sockets: the same code path as workers in
// other processes.
type LocalWorkers struct {
	Workers []*worker.Worker
	cancels []context.CancelFunc
	dones   []chan struct{}
}

// LocalOptions configures StartLocalWorkers.
type LocalOptions struct {
	Count    int    // how many workers
	JoinAddr string // gossip address to join
	IDPrefix string // worker ids are IDPrefix + index (default "local-")
	Fast     bool   // fast gossip timings
	Key      []byte // gossip encryption key
	// SocketDir is where the workers listen on Unix sockets for each other
	// (empty: TCP only).
	SocketDir string
	// ShmDir is where the workers make their shared-memory ring segments
	// (empty: no shared memory).
	ShmDir string
	TLS    tlsutil.Config
	// Registry, when set, receives every worker's metrics labelled with
	// its id.
	Registry prometheus.Registerer
	Log      *slog.Logger
	// Threads is each worker's engine thread count (0: one).
	Threads int
}

// StartLocalWorkers starts the workers and has them join the run.
func StartLocalWorkers(ctx context.Context, o LocalOptions) (*LocalWorkers, error) {
	if o.IDPrefix == "" {
		o.IDPrefix = "local-"
	}
	lw := &LocalWorkers{}
	for i := range o.Count {
		wctx, cancel := context.WithCancel(ctx)
		id := fmt.Sprintf("%s%d", o.IDPrefix, i)
		var wm *metrics.Worker
		if o.Registry != nil {
			wm = metrics.NewWorker(prometheus.WrapRegistererWith(prometheus.Labels{"worker": id}, o.Registry))
		}
		w, err := worker.Start(wctx, worker.Config{
			ID: id, TLS: o.TLS, Metrics: wm, GRPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
			Join: []string{o.JoinAddr}, GossipFast: o.Fast, GossipKey: o.Key, Log: o.Log, RingSocketDir: o.SocketDir,
			RingShmDir: o.ShmDir, Threads: o.Threads,
		})
		if err != nil {
			cancel()
			lw.Stop()
			return nil, fmt.Errorf("start local worker %d: %w", i, err)
		}
		done := make(chan struct{})
		lw.Workers = append(lw.Workers, w)
		lw.cancels = append(lw.cancels, cancel)
		lw.dones = append(lw.dones, done)
		go func() {
			defer close(done)
			if err := w.Run(wctx); err != nil {
				o.Log.Error("local worker stopped", "worker", w.ID(), "err", err)
			}
		}()
	}
	return lw, nil
}

// StopWorker stops worker i gracefully (it leaves the gossip cluster) and
// waits for it.
func (lw *LocalWorkers) StopWorker(i int) {
	lw.cancels[i]()
	<-lw.dones[i]
}

// Stop stops every worker gracefully and waits for them.
func (lw *LocalWorkers) Stop() {
	for _, c := range lw.cancels {
		c()
	}
	for _, d := range lw.dones {
		<-d
	}
}
