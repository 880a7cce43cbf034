package shmring

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
)

func addrOf(r int) string { return fmt.Sprintf("10.0.0.%d:7000", r+1) }

// inmemNet is the test twin of the gRPC fallback: the transports of one
// in-memory ring (allreduce.NewInmemRing), handed out by the connecting
// worker's position; a worker only uses the directions that shared memory
// does not serve.
type inmemNet struct {
	rank    int
	ts      []allreduce.Transport
	connect *atomic.Int32 // how many Connects reached a fallback
}

func (f inmemNet) Connect(_ context.Context, _, _ string, _ uint64) (allreduce.Transport, error) {
	f.connect.Add(1)
	return f.ts[f.rank], nil
}

// ring is a test ring in one process: worker r has a segment iff shm[r].
type ring struct {
	dir       string
	segs      []*Segment
	nets      []*Network
	fallbacks atomic.Int32
	inmem     []allreduce.Transport
}

func newRing(t *testing.T, shm []bool, capacity int) *ring {
	t.Helper()
	n := len(shm)
	g := &ring{dir: shmDir(t), segs: make([]*Segment, n), nets: make([]*Network, n), inmem: allreduce.NewInmemRing(n)}
	for r := range n {
		if shm[r] {
			s, err := ListenCapacity(g.dir, addrOf(r), capacity)
			if err != nil {
				t.Fatal(err)
			}
			g.segs[r] = s
			t.Cleanup(func() { _ = s.Close() })
		}
	}
	for r := range n {
		g.nets[r] = NewNetwork(g.dir, g.segs[r], inmemNet{rank: r, ts: g.inmem, connect: &g.fallbacks})
		t.Cleanup(func() { _ = g.nets[r].Close() })
	}
	return g
}

func (g *ring) connect(t *testing.T, gen uint64) []allreduce.Transport {
	t.Helper()
	n := len(g.nets)
	ts := make([]allreduce.Transport, n)
	for r := range n {
		tr, err := g.nets[r].Connect(context.Background(), addrOf((r+n-1)%n), addrOf((r+1)%n), gen)
		if err != nil {
			t.Fatal(err)
		}
		ts[r] = tr
	}
	return ts
}

func allShm(n int) []bool {
	s := make([]bool, n)
	for i := range s {
		s[i] = true
	}
	return s
}

func randomBufs(n, l int, seed uint64) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, uint64(n*1_000_003+l)))
	bufs := make([][]float32, n)
	for r := range bufs {
		bufs[r] = make([]float32, l)
		for i := range bufs[r] {
			bufs[r][i] = rng.Float32()*2 - 1
		}
	}
	return bufs
}

func clone(bufs [][]float32) [][]float32 {
	c := make([][]float32, len(bufs))
	for r := range bufs {
		c[r] = append([]float32(nil), bufs[r]...)
	}
	return c
}

// wantBits runs the all-reduce of bufs over the in-memory transport.
func wantBits(t *testing.T, bufs [][]float32, cfg allreduce.Config) [][]float32 {
	t.Helper()
	want := clone(bufs)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := allreduce.RunRing(ctx, allreduce.NewInmemRing(len(bufs)), cfg, want); err != nil {
		t.Fatal(err)
	}
	return want
}

func sameBits(t *testing.T, got, want [][]float32) {
	t.Helper()
	for r := range want {
		for i := range want[r] {
			if math.Float32bits(got[r][i]) != math.Float32bits(want[r][i]) {
				t.Fatalf("rank %d element %d: got %g, want %g (bits differ)", r, i, got[r][i], want[r][i])
			}
		}
	}
}

func run(t *testing.T, ts []allreduce.Transport, cfg allreduce.Config, bufs [][]float32) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := allreduce.RunRing(ctx, ts, cfg, bufs)
	return err
}

// TestAllReduceMatchesInmem: rings of 2 to 4 workers all on shared memory
// give the very bits of the in-memory ring, with frames that wrap around the
// ring's end and rings too small for more than one or two frames.
func TestAllReduceMatchesInmem(t *testing.T) {
	cases := []struct {
		frame, capacity int
	}{
		{4, 4096},            // one-element frames, 64 records per lap
		{1000, 4096},         // stride 1088: payloads wrap around the end
		{4000, 4096},         // one record fills the ring: strict lock step
		{12 << 10, 16 << 10}, // every other payload wraps
		{0, DefaultCapacity}, // 512 KiB frames
	}
	for n := 2; n <= 4; n++ {
		for _, l := range []int{1, n + 1, 1001, 100_003} {
			for _, c := range cases {
				if c.frame < 1000 && l > 2000 {
					continue
				}
				t.Run(fmt.Sprintf("n=%d/len=%d/frame=%d/cap=%d", n, l, c.frame, c.capacity), func(t *testing.T) {
					g := newRing(t, allShm(n), c.capacity)
					bufs := randomBufs(n, l, 1)
					// Two steps of generation 1 (the coordinator keeps a ring's
					// generation from step to step), then one of generation 2,
					// on the same segments.
					for i, gen := range []uint64{1, 1, 2} {
						cfg := allreduce.Config{Generation: gen, Step: 10 + uint64(i), FrameBytes: c.frame}
						want := wantBits(t, bufs, cfg)
						got := clone(bufs)
						if err := run(t, g.connect(t, gen), cfg, got); err != nil {
							t.Fatal(err)
						}
						sameBits(t, got, want)
					}
					if f := g.fallbacks.Load(); f != 0 {
						t.Fatalf("%d Connects used the fallback, want none", f)
					}
				})
			}
		}
	}
}

// TestMixedRing: workers without a segment are reached, and receive, through
// the fallback; the others use shared memory, per direction.
func TestMixedRing(t *testing.T) {
	for _, shm := range [][]bool{
		{true, false},
		{true, true, false},
		{true, true, false, true},
		{false, true, false, true},
		{true, false, false, false},
		{false, false, false},
	} {
		t.Run(fmt.Sprint(shm), func(t *testing.T) {
			n := len(shm)
			g := newRing(t, shm, 16<<10)
			ts := g.connect(t, 1)
			for r, tr := range ts {
				right, left := shm[(r+1)%n] && shm[r], shm[(r+n-1)%n] && shm[r]
				st, ok := tr.(*Transport)
				if !ok {
					if right || left {
						t.Fatalf("rank %d: got the fallback's transport, want shared memory (send %v, receive %v)", r, right, left)
					}
					continue
				}
				if st.SendsShared() != right || st.ReceivesShared() != left {
					t.Fatalf("rank %d: sends shared %v, receives shared %v; want %v, %v", r, st.SendsShared(), st.ReceivesShared(), right, left)
				}
			}
			bufs := randomBufs(n, 50_001, 2)
			cfg := allreduce.Config{Generation: 1, Step: 3, FrameBytes: 4 << 10}
			want := wantBits(t, bufs, cfg)
			if err := run(t, ts, cfg, bufs); err != nil {
				t.Fatal(err)
			}
			sameBits(t, bufs, want)
		})
	}
}

// pair is worker 0 sending into worker 1's segment.
func pair(t *testing.T, capacity int) (*Network, *Network, *Segment) {
	t.Helper()
	g := newRing(t, allShm(2), capacity)
	return g.nets[0], g.nets[1], g.segs[1]
}

func connect(t *testing.T, n *Network, self int, gen uint64) *Transport {
	t.Helper()
	tr, err := n.Connect(context.Background(), addrOf(1-self), addrOf(1-self), gen)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := tr.(*Transport)
	if !ok || !st.SendsShared() || !st.ReceivesShared() {
		t.Fatalf("want a transport on shared memory both ways, got %T", tr)
	}
	return st
}

func frame(gen, step uint64, seq uint32, payload []byte) *allreduce.Frame {
	return &allreduce.Frame{Generation: gen, Step: step, Seq: seq, Data: payload}
}

// TestStaleGenerationIsDropped: frames of an older generation, left in the
// ring by an aborted all-reduce or sent by a former neighbour while the new
// generation runs, never reach the all-reduce.
func TestStaleGenerationIsDropped(t *testing.T) {
	a, b, _ := pair(t, 16<<10)
	ctx := context.Background()
	old := connect(t, a, 0, 1)
	for i := range 3 { // leftovers of generation 1
		if err := old.Send(ctx, frame(1, 5, uint32(i), make([]byte, 1024))); err != nil {
			t.Fatal(err)
		}
	}
	rx := connect(t, b, 1, 2) // drops them
	tx := connect(t, a, 0, 2)
	if err := old.Send(ctx, frame(1, 5, 3, make([]byte, 1024))); err != nil { // a straggler
		t.Fatal(err)
	}
	if err := tx.Send(ctx, frame(2, 6, 0, []byte{1, 2, 3, 4})); err != nil {
		t.Fatal(err)
	}
	if err := old.Send(ctx, frame(0, 5, 4, make([]byte, 8))); err != nil {
		t.Fatal(err)
	}
	if err := tx.Send(ctx, frame(3, 6, 1, []byte{5, 6, 7, 8})); err != nil {
		t.Fatal(err)
	}
	for _, want := range []allreduce.Frame{{Generation: 2, Step: 6, Seq: 0}, {Generation: 3, Step: 6, Seq: 1}} {
		f, err := rx.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Generation != want.Generation || f.Step != want.Step || f.Seq != want.Seq || len(f.Data) != 4 {
			t.Fatalf("got frame gen %d step %d seq %d (%d bytes), want gen %d step %d seq %d", f.Generation, f.Step, f.Seq, len(f.Data), want.Generation, want.Step, want.Seq)
		}
	}
}

// TestRejectedNewerFrameIsDeliveredAgain: a frame that an all-reduce of an
// older generation received (and rejected) is not lost for the new one.
func TestRejectedNewerFrameIsDeliveredAgain(t *testing.T) {
	a, b, _ := pair(t, 16<<10)
	ctx := context.Background()
	rxOld := connect(t, b, 1, 1)
	tx := connect(t, a, 0, 2)
	if err := tx.Send(ctx, frame(2, 9, 0, []byte{1, 2, 3, 4})); err != nil {
		t.Fatal(err)
	}
	if f, err := rxOld.Recv(ctx); err != nil || f.Generation != 2 {
		t.Fatalf("old transport: got %v, %v; want the generation 2 frame (for the all-reduce to reject)", f, err)
	}
	rx := connect(t, b, 1, 2)
	f, err := rx.Recv(ctx)
	if err != nil || f.Generation != 2 || f.Step != 9 {
		t.Fatalf("new transport: got %v, %v; want the generation 2 frame again", f, err)
	}
}

// TestNewerGenerationIsRejected: AllReduce, not the transport, refuses a frame
// of a newer generation.
func TestNewerGenerationIsRejected(t *testing.T) {
	g := newRing(t, allShm(2), 64<<10)
	ts := g.connect(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts[0].Send(ctx, frame(2, 1, 0, make([]byte, 8))); err != nil {
		t.Fatal(err)
	}
	_, err := allreduce.AllReduce(ctx, ts[1], allreduce.Config{Rank: 1, Size: 2, Generation: 1, Step: 1}, make([]float32, 4))
	var fe *allreduce.FrameError
	if !errors.As(err, &fe) || fe.Field != "generation" {
		t.Fatalf("got %v, want a FrameError on the generation", err)
	}
}

// TestCorruptRecordIsRejected: every header field of a record reaches the
// all-reduce's checks; a broken stride is reported as ErrCorrupt.
func TestCorruptRecordIsRejected(t *testing.T) {
	cases := []struct {
		field  string // FrameError.Field; "" for ErrCorrupt
		off    int
		is32   bool
		delta  uint64
		target uint32 // seq of the frame to corrupt
	}{
		{"generation", recGen, false, 1, 1},
		{"step", recStep, false, 1, 0},
		{"round", recRound, true, 1, 2},
		{"seq", recSeq, true, 1, 1},
		{"offset", recOffset, false, 4, 1},
		{"length", recLen, true, ^uint64(3), 1}, // 4 bytes short
		{"", recStride, false, 8, 1},
	}
	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			g := newRing(t, allShm(2), 64<<10)
			ts := g.connect(t, 1)
			var hit atomic.Bool
			testHookPublish = func(rec []byte) {
				// Corrupt one frame of rank 0's first round.
				if *u32(rec, recRound) == 0 && *u32(rec, recSeq) == c.target && *u64(rec, recOffset) < 2048 && !hit.Swap(true) {
					if c.is32 {
						*u32(rec, c.off) += uint32(c.delta)
					} else {
						*u64(rec, c.off) += c.delta
					}
				}
			}
			t.Cleanup(func() { testHookPublish = nil })
			bufs := randomBufs(2, 4096, 3)
			err := run(t, ts, allreduce.Config{Generation: 1, Step: 1, FrameBytes: 1024}, bufs)
			if !hit.Load() {
				t.Fatal("no record corrupted")
			}
			var fe *allreduce.FrameError
			switch {
			case c.field == "" && !errors.Is(err, ErrCorrupt):
				t.Fatalf("got %v, want ErrCorrupt", err)
			case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
				t.Fatalf("got %v, want a FrameError on %s", err, c.field)
			}
		})
	}
}

// TestCancelUnblocks: a Send blocked on a full ring and a Recv on an empty
// one return promptly, with the cause, once ctx is done: a dead neighbour.
func TestCancelUnblocks(t *testing.T) {
	for _, c := range []struct {
		name string
		op   func(ctx context.Context, tx, rx *Transport) error
	}{
		{"send", func(ctx context.Context, tx, _ *Transport) error {
			for i := 0; ; i++ {
				if err := tx.Send(ctx, frame(1, 1, uint32(i), make([]byte, 1024))); err != nil {
					if i < 3 { // 4096 bytes hold 3 records of 1088
						return fmt.Errorf("send %d failed early: %w", i, err)
					}
					return err
				}
			}
		}},
		{"recv", func(ctx context.Context, _, rx *Transport) error {
			_, err := rx.Recv(ctx)
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b, _ := pair(t, 4096)
			tx, rx := connect(t, a, 0, 1), connect(t, b, 1, 1)
			cause := errors.New("neighbour died")
			ctx, cancel := context.WithCancelCause(context.Background())
			// start is taken before the timer is armed, so the operation can
			// only return early (before the cancellation) if it did not block.
			start := time.Now()
			time.AfterFunc(100*time.Millisecond, func() { cancel(cause) })
			err := c.op(ctx, tx, rx)
			if el := time.Since(start); el < 100*time.Millisecond || el > 600*time.Millisecond {
				t.Errorf("returned after %v, want about 100ms", el)
			}
			if !errors.Is(err, cause) {
				t.Fatalf("got %v, want an error wrapping the cause", err)
			}
		})
	}
}

// TestDeadNeighbourMidAllReduce: the left neighbour stops after a few frames;
// the all-reduce returns the deadline's error.
func TestDeadNeighbourMidAllReduce(t *testing.T) {
	g := newRing(t, allShm(2), 8<<10)
	ts := g.connect(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	for i := range 2 { // rank 0's first frames, then silence
		f := frame(1, 1, uint32(i), make([]byte, 1024))
		f.Offset = uint64(256 * i)
		if err := ts[0].Send(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	_, err := allreduce.AllReduce(ctx, ts[1], allreduce.Config{Rank: 1, Size: 2, Generation: 1, Step: 1, FrameBytes: 1024}, make([]float32, 64<<10))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("got %v after %v, want the deadline promptly", err, time.Since(start))
	}
}

// deadPid returns the pid of a process that has exited.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SHMRING_EXIT=1")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestStaleSegmentIsNotUsed: the file of a killed worker (no owner lock, or a
// pid that no longer exists) is ignored by its neighbours and replaced by
// Listen.
func TestStaleSegmentIsNotUsed(t *testing.T) {
	for _, c := range []struct {
		name string
		lock bool // the owner lock is held (by this process)
		pid  int  // 0: this process
	}{
		{"no lock, pid alive", false, 0},
		{"locked, pid dead", true, -1},
		{"no lock, pid dead", false, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := shmDir(t)
			live, err := ListenCapacity(dir, "tmp", 4096)
			if err != nil {
				t.Fatal(err)
			}
			// Forge the stale segment of addrOf(1) from a copy of a live one.
			raw, err := os.ReadFile(live.Path())
			if err != nil {
				t.Fatal(err)
			}
			_ = live.Close()
			addr := addrOf(1)
			copy(raw[offAddr:offAddr+maxAddr], make([]byte, maxAddr))
			copy(raw[offAddr:], addr)
			*u32(raw, offAddrLen) = uint32(len(addr))
			pid := os.Getpid()
			if c.pid < 0 {
				pid = deadPid(t)
			}
			*u64(raw, offPid) = uint64(pid)
			path := SegmentPath(dir, addr)
			if err := os.WriteFile(path, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			if c.lock {
				f, err := os.OpenFile(path, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if err := lockOwner(int(f.Fd())); err != nil {
					t.Fatal(err)
				}
			}
			if p, err := openPeer(path, addr); err == nil {
				p.close()
				t.Fatal("a stale segment passed as live")
			}
			self, err := Listen(dir, addrOf(0))
			if err != nil {
				t.Fatal(err)
			}
			defer self.Close()
			var fb atomic.Int32
			n := NewNetwork(dir, self, inmemNet{ts: allreduce.NewInmemRing(1), connect: &fb})
			defer n.Close()
			tr, err := n.Connect(context.Background(), addr, addr, 1)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := tr.(*Transport); ok || fb.Load() != 1 {
				t.Fatalf("got %T after %d fallback Connects, want the fallback's transport", tr, fb.Load())
			}
			// The worker comes back: Listen replaces the stale file.
			if c.lock {
				return // still locked by this test: Listen would see it live
			}
			s, err := Listen(dir, addr)
			if err != nil {
				t.Fatalf("Listen over a stale segment: %v", err)
			}
			_ = s.Close()
		})
	}
}

// TestListen: a live segment cannot be taken over; Close removes the file;
// the directory and file modes are as documented and checked.
func TestListen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shm")
	s, err := Listen(dir, "a:1")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("directory: %v, %v; want mode 0700", fi.Mode(), err)
	}
	fi, err := os.Stat(s.Path())
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != headerBytes+DefaultCapacity {
		t.Fatalf("segment: %v, %d bytes, %v; want mode 0600, %d bytes", fi.Mode(), fi.Size(), err, headerBytes+DefaultCapacity)
	}
	if _, err := Listen(dir, "a:1"); err == nil {
		t.Fatal("a second Listen on a live segment succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Path()); !os.IsNotExist(err) {
		t.Fatalf("file after Close: %v, want it gone", err)
	}
	s, err = Listen(dir, "a:1")
	if err != nil {
		t.Fatal(err)
	}
	// A file others may read is not used.
	if err := os.Chmod(s.Path(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := openPeer(s.Path(), "a:1"); err == nil {
		t.Fatal("a 0644 segment was accepted")
	}
	_ = s.Close()
	// Nor is a directory others may enter.
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(open, "a:1"); err == nil {
		t.Fatal("Listen accepted a directory of mode 0755")
	}
	if _, err := Listen("/proc/no/such/dir", "a:1"); err == nil {
		t.Fatal("Listen in an impossible directory succeeded")
	}
}

// shmDir returns a fresh segment directory (t.TempDir's own are 0755: Listen
// refuses those, and creates this one 0700).
func shmDir(t *testing.T) string { return filepath.Join(t.TempDir(), "shm") }

// TestNeighbourRestarts: Connect keeps the right neighbour's mapping while
// its segment is the same, and maps the new one after the neighbour comes
// back with a new segment (a new file at the same path).
func TestNeighbourRestarts(t *testing.T) {
	g := newRing(t, allShm(2), 16<<10)
	bufs := randomBufs(2, 10_001, 4)
	for gen := uint64(1); gen <= 3; gen++ {
		if gen == 3 { // worker 1 restarts
			_ = g.segs[1].Close()
			s, err := ListenCapacity(g.dir, addrOf(1), 32<<10)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			g.segs[1] = s
			g.nets[1] = NewNetwork(g.dir, s, g.nets[1].fallback)
		}
		before := g.nets[0].out
		cfg := allreduce.Config{Generation: gen, Step: gen, FrameBytes: 2 << 10}
		want := wantBits(t, bufs, cfg)
		ts := g.connect(t, gen)
		if reused := g.nets[0].out == before; reused != (gen == 2) {
			t.Fatalf("generation %d: mapping reused %v, want %v", gen, reused, gen == 2)
		}
		if err := run(t, ts, cfg, bufs); err != nil {
			t.Fatal(err)
		}
		sameBits(t, bufs, want)
	}
}

// TestRemovedSegmentFallsBack: a worker whose segment file was removed by
// someone else (a /dev/shm cleanup) uses the fallback both ways, as its
// neighbours, who no longer see the file, do towards it.
func TestRemovedSegmentFallsBack(t *testing.T) {
	g := newRing(t, allShm(3), 16<<10)
	if err := os.Remove(g.segs[1].Path()); err != nil {
		t.Fatal(err)
	}
	ts := g.connect(t, 1)
	if _, ok := ts[1].(*Transport); ok {
		t.Fatalf("worker 1: got %T, want the fallback's transport", ts[1])
	}
	if st := ts[0].(*Transport); st.SendsShared() || !st.ReceivesShared() {
		t.Fatalf("worker 0: sends shared %v, receives shared %v; want false, true", st.SendsShared(), st.ReceivesShared())
	}
	bufs := randomBufs(3, 30_001, 5)
	cfg := allreduce.Config{Generation: 1, Step: 1, FrameBytes: 4 << 10}
	want := wantBits(t, bufs, cfg)
	if err := run(t, ts, cfg, bufs); err != nil {
		t.Fatal(err)
	}
	sameBits(t, bufs, want)
}

// TestListenSweepsDeadSegments: a killed worker's segment (nobody holds its
// owner lock) is removed by the next Listen in the directory, so the tmpfs
// does not fill up with the memory of dead workers; a live one is kept.
func TestListenSweepsDeadSegments(t *testing.T) {
	dir := shmDir(t)
	live, err := ListenCapacity(dir, addrOf(0), 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	dead, err := ListenCapacity(dir, addrOf(1), 4096)
	if err != nil {
		t.Fatal(err)
	}
	deadPath := dead.Path()
	dead.unmap() // the process "dies": the file stays, its lock goes
	if _, err := os.Stat(deadPath); err != nil {
		t.Fatalf("the dead segment should still be there: %v", err)
	}
	other, err := ListenCapacity(dir, addrOf(2), 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := os.Stat(deadPath); !os.IsNotExist(err) {
		t.Fatalf("the dead segment was not swept: %v", err)
	}
	if _, err := os.Stat(live.Path()); err != nil {
		t.Fatalf("the live segment was swept: %v", err)
	}
	// A half-built segment of a process that died while building it goes
	// too; one of a live builder stays.
	deadTmp := fmt.Sprintf("%s.%d.00.tmp", SegmentPath(dir, addrOf(3)), deadPid(t))
	liveTmp := fmt.Sprintf("%s.%d.00.tmp", SegmentPath(dir, addrOf(4)), os.Getpid())
	for _, p := range []string{deadTmp, liveTmp} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	last, err := ListenCapacity(dir, addrOf(5), 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer last.Close()
	if _, err := os.Stat(deadTmp); !os.IsNotExist(err) {
		t.Fatalf("the dead builder's file was not swept: %v", err)
	}
	if _, err := os.Stat(liveTmp); err != nil {
		t.Fatalf("a live builder's file was swept: %v", err)
	}
}
