package coordinator

import (
	"context"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/train"
)

// TestGarbageOnCoordinatorPortsCrashesNothing sends random bytes to the
// coordinator's gRPC and gossip ports, then checks that a worker still joins
// and a run still trains.
func TestGarbageOnCoordinatorPortsCrashesNothing(t *testing.T) {
	s := mnistSetup(t, model.OptimizerConfig{Kind: model.SGD, LR: 0.1}, 3)
	s.cfg.Hidden = []int{16}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	net0, _ := model.New(s.cfg, 1)
	opt, _ := model.NewOptimizer(s.opt, len(net0.Params))
	c, err := Start(ctx, Config{GRPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0", GossipFast: true, Log: testLog(t)},
		Job{Model: s.cfg, Optimizer: opt.Config, Train: s.train, Params: net0.Params, OptState: opt})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rng := rand.New(rand.NewPCG(2, 2))
	for range 30 {
		for _, target := range []struct{ network, addr string }{{"tcp", c.Addr()}, {"tcp", c.GossipAddr()}, {"udp", c.GossipAddr()}} {
			conn, err := net.DialTimeout(target.network, target.addr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 1+rng.IntN(8192))
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			conn.SetDeadline(time.Now().Add(200 * time.Millisecond))
			conn.Write(b)
			conn.Close()
		}
	}
	lw, err := StartLocalWorkers(ctx, LocalOptions{Count: 1, JoinAddr: c.GossipAddr(), Fast: true, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer lw.Stop()
	res, err := train.Run(ctx, c, s.train, nil, s.sched, train.Hooks{}, nil, nil)
	if err != nil || res.Steps != 3 {
		t.Fatalf("after garbage input the run trained %v steps: %v", res, err)
	}
}
