package coordinator

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ringtrain/ringtrain/pkg/worker"
)

// LocalWorkers are workers run inside the coordinator's process for the
// single-node mode. Each has its own gRPC server and gossip node on
// 127.0.0.1 and talks over real sockets: the same code path as workers in
// other processes.
type LocalWorkers struct {
	Workers []*worker.Worker
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// StartLocalWorkers starts n workers that join the gossip cluster at joinAddr.
func StartLocalWorkers(ctx context.Context, n int, joinAddr string, fast bool, key []byte, log *slog.Logger) (*LocalWorkers, error) {
	ctx, cancel := context.WithCancel(ctx)
	lw := &LocalWorkers{cancel: cancel}
	for i := range n {
		w, err := worker.Start(ctx, worker.Config{
			ID: fmt.Sprintf("local-%d", i), GRPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
			Join: []string{joinAddr}, GossipFast: fast, GossipKey: key, Log: log,
		})
		if err != nil {
			lw.Stop()
			return nil, fmt.Errorf("start local worker %d: %w", i, err)
		}
		lw.Workers = append(lw.Workers, w)
		lw.wg.Go(func() {
			if err := w.Run(ctx); err != nil {
				log.Error("local worker stopped", "worker", w.ID(), "err", err)
			}
		})
	}
	return lw, nil
}

// Stop stops the workers (gracefully leaving the cluster) and waits for them.
func (lw *LocalWorkers) Stop() {
	lw.cancel()
	lw.wg.Wait()
}
