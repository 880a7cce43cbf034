package coordinator

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/train"
)

// event changes the membership after a given step (1-based).
type event struct {
	after int
	do    func(t *testing.T, f *fixture)
}

// fixture is a running test cluster: in memory (MakeCluster) or, with
// real networks, workers with their own gRPC servers and memberlist nodes
// on 127.0.0.1.
type fixture struct {
	cl *Cluster // in memory

	c     *Coordinator // real networks
	first *LocalWorkers
	added []*LocalWorkers
	ctx   context.Context
}

func kill(i int) func(*testing.T, *fixture) {
	return func(_ *testing.T, f *fixture) {
		if f.cl != nil {
			f.cl.Kill(i)
			return
		}
		f.first.Workers[i].Kill()
	}
}

func stop(i int) func(*testing.T, *fixture) {
	return func(_ *testing.T, f *fixture) {
		if f.cl != nil {
			f.cl.Stop(i)
			return
		}
		f.first.StopWorker(i)
	}
}

func add(t *testing.T, f *fixture) {
	if f.cl != nil {
		if _, err := f.cl.AddWorker(fmt.Sprintf("added-%d", len(f.cl.Workers))); err != nil {
			t.Error(err)
		}
		return
	}
	lw, err := StartLocalWorkers(f.ctx, LocalOptions{Count: 1, JoinAddr: f.c.GossipAddr(), IDPrefix: fmt.Sprintf("added-%d-", len(f.added)), Fast: true, Log: testLog(t)})
	if err != nil {
		t.Error(err)
		return
	}
	f.added = append(f.added, lw)
	<-lw.Workers[0].Joined()
}

// runWith trains steps MNIST 1-vs-2 steps starting with `start` workers and
// applying the events; it returns the parameters and the world size of every
// step.
func runWith(t *testing.T, s setup, start int, events []event) ([]float32, map[int]int, Stats) {
	return runWithMax(t, s, start, 0, false, events)
}

func runWithMax(t *testing.T, s setup, start, maxWorkers int, real bool, events []event) ([]float32, map[int]int, Stats) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	net, _ := model.New(s.cfg, 1)
	opt, _ := model.NewOptimizer(s.opt, len(net.Params))
	log := testLog(t)
	job := s.job(net, opt)
	f := &fixture{ctx: ctx}
	var c *Coordinator
	if !real {
		cl, err := MakeCluster(ctx, Config{MinWorkers: 1, MaxWorkers: maxWorkers, CheckEvery: 1, Log: log}, job, start)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		f.cl, c = cl, cl.Coordinator
		return trainWith(t, ctx, s, c, f, events, log)
	}
	c, err := Start(ctx, Config{GRPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0", MinWorkers: 1, MaxWorkers: maxWorkers, CheckEvery: 1, GossipFast: true, Log: log}, job)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first, err := StartLocalWorkers(ctx, LocalOptions{Count: start, JoinAddr: c.GossipAddr(), Fast: true, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Stop()
	for _, w := range first.Workers {
		<-w.Joined()
	}
	f.c, f.first = c, first
	defer func() {
		for _, lw := range f.added {
			lw.Stop()
		}
	}()
	return trainWith(t, ctx, s, c, f, events, log)
}

// trainWith trains on c, applying the events after their steps.
func trainWith(t *testing.T, ctx context.Context, s setup, c *Coordinator, f *fixture, events []event, log *slog.Logger) ([]float32, map[int]int, Stats) {
	t.Helper()
	worlds := map[int]int{}
	hooks := train.Hooks{Step: func(_, step, _ int, _ int64, _ float64) {
		worlds[step] = c.WorldSize()
		for _, e := range events {
			if e.after == step {
				e.do(t, f)
			}
		}
	}}
	res, err := train.Run(ctx, c, s.train, nil, s.sched, hooks, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != s.sched.MaxSteps || res.Samples != int64(s.sched.MaxSteps*s.sched.Batch) {
		t.Fatalf("ran %d steps over %d samples, want %d over %d: a sample was lost or counted twice",
			res.Steps, res.Samples, s.sched.MaxSteps, s.sched.MaxSteps*s.sched.Batch)
	}
	got, err := c.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Clone(got), worlds, c.Stats()
}

// TestFailuresDoNotChangeTheResult: crashes (Kill: no goodbye), graceful
// stops and joins between steps. A step's result depends only on the ring
// that computed it, so a run whose workers crash ends bit for bit where a
// run with the same rings and only graceful changes ends, and within float32
// rounding of the undisturbed single-process run (1e-5 of the parameters'
// scale: ring-size changes flip the summation order several times, and a
// ReLU unit whose pre-activation sits near zero can amplify that).
func TestFailuresDoNotChangeTheResult(t *testing.T) {
	const steps = 24
	s := mnistSetup(t, model.OptimizerConfig{Kind: model.SGD, LR: 0.1}, steps)
	ref := s.reference(t)

	crashed, worlds, st := runWith(t, s, 3, []event{{5, kill(1)}, {10, add}, {15, kill(2)}})
	planned, pworlds, _ := runWith(t, s, 3, []event{{5, stop(1)}, {10, add}, {15, stop(2)}})
	t.Logf("world size by step %v; aborted attempts %d, recovery %.3f s in all", worlds, st.Aborts, st.RecoverySeconds)
	for step, want := range map[int]int{4: 3, 8: 2, 14: 3, 20: 2} {
		if worlds[step] != want || pworlds[step] != want {
			t.Fatalf("step %d ran on %d (crash run) and %d (planned run) workers, want %d", step, worlds[step], pworlds[step], want)
		}
	}
	if st.Aborts == 0 {
		t.Fatal("no step was aborted: the crashes were not noticed")
	}
	if !slices.Equal(crashed, planned) {
		t.Fatalf("crashes changed the result: %.3g of the parameters' scale from the planned run", maxRelDiff(crashed, planned))
	}
	if d := maxRelDiff(ref, crashed); d > 1e-5 {
		t.Fatalf("the disturbed run differs from the single-process one by %.3g of the parameters' scale", d)
	} else {
		t.Logf("max |difference| / max |param| against the single-process run = %.3g", d)
	}
}

// TestSparesReplaceLostWorkers: with --max-workers 2 and three workers, one
// waits as a spare and takes the place of a worker that crashes.
func TestSparesReplaceLostWorkers(t *testing.T) {
	s := mnistSetup(t, model.OptimizerConfig{Kind: model.SGD, LR: 0.1}, 12)
	_, worlds, st := runWithMax(t, s, 3, 2, true, []event{{4, kill(0)}})
	for step := 1; step <= 12; step++ {
		if worlds[step] != 2 {
			t.Fatalf("step %d ran on %d workers; with --max-workers 2 and a spare it must stay 2: %v", step, worlds[step], worlds)
		}
	}
	if st.Aborts == 0 {
		t.Fatal("the crash was not noticed")
	}
}
