package shmring

import (
	"bufio"
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
)

// The test binary doubles as a ring worker: with SHMRING_RANK set it runs
// rankMain (a rank of a ring in its own process, driven over stdin/stdout)
// instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("SHMRING_EXIT") != "" {
		os.Exit(0)
	}
	if os.Getenv("SHMRING_RANK") != "" {
		os.Exit(rankMain())
	}
	if os.Getenv("SHMRING_DIE") != "" {
		os.Exit(dieMidFrame())
	}
	os.Exit(m.Run())
}

func envInt(k string) int {
	v, err := strconv.Atoi(os.Getenv(k))
	if err != nil {
		panic(fmt.Sprintf("%s: %v", k, err))
	}
	return v
}

// fillRank fills buf with rank r's test values (small multiples of 1/4, so
// that every sum is exact).
func fillRank(buf []float32, r int) {
	for i := range buf {
		buf[i] = float32((i*7+r*13)%101) * 0.25
	}
}

// fillRank64 fills buf with rank r's int64 test values: near ±2^62, signs
// alternating with the rank, so that partial sums wrap while the totals of
// up to 4 ranks fit.
func fillRank64(buf []int64, r int) {
	sign := int64(1 - 2*(r%2))
	for i := range buf {
		buf[i] = sign*(1<<62) + int64((i*7+r*13)%101)<<20
	}
}

func hashInt64(buf []int64) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for _, v := range buf {
		for k := range b {
			b[k] = byte(uint64(v) >> (8 * k))
		}
		_, _ = h.Write(b[:])
	}
	return h.Sum64()
}

func hashBits(buf []float32) uint64 {
	h := fnv.New64a()
	var b [4]byte
	for _, v := range buf {
		u := math.Float32bits(v)
		b[0], b[1], b[2], b[3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
		_, _ = h.Write(b[:])
	}
	return h.Sum64()
}

func cpuNanos() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// rankMain is one rank. Commands, one a line, each answered with one line:
//
//	connect GEN                  -> "connected SENDSHARED RECVSHARED"
//	run STEP ITERS TIMEOUTMS     -> "done CPUNS HASH" or "error MESSAGE"
//	quit                         -> exits
func rankMain() int {
	r, n := envInt("SHMRING_RANK"), envInt("SHMRING_SIZE")
	dir, elems, frameBytes := os.Getenv("SHMRING_DIR"), envInt("SHMRING_ELEMS"), envInt("SHMRING_FRAME")
	out := bufio.NewWriter(os.Stdout)
	reply := func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
		_ = out.Flush()
	}
	capacity := DefaultCapacity
	if c := os.Getenv("SHMRING_CAPACITY"); c != "" { // experiments
		capacity, _ = strconv.Atoi(c)
	}
	seg, err := ListenCapacity(dir, addrOf(r), capacity)
	if err != nil {
		reply("error %v", err)
		return 1
	}
	defer seg.Close()
	net := NewNetwork(dir, seg, nil)
	defer net.Close()
	// allReduce runs one all-reduce of this rank's buffer: float32, or
	// int64 with SHMRING_ELEM=int64.
	var (
		allReduce func(ctx context.Context, tr allreduce.Transport, cfg allreduce.Config) error
		hash      func() uint64
	)
	if os.Getenv("SHMRING_ELEM") == "int64" {
		buf := make([]int64, elems)
		fillRank64(buf, r)
		allReduce = func(ctx context.Context, tr allreduce.Transport, cfg allreduce.Config) error {
			_, err := allreduce.AllReduce(ctx, tr, cfg, buf)
			return err
		}
		hash = func() uint64 { return hashInt64(buf) }
	} else {
		buf := make([]float32, elems)
		fillRank(buf, r)
		allReduce = func(ctx context.Context, tr allreduce.Transport, cfg allreduce.Config) error {
			_, err := allreduce.AllReduce(ctx, tr, cfg, buf)
			return err
		}
		hash = func() uint64 { return hashBits(buf) }
	}
	left, right := addrOf((r+n-1)%n), addrOf((r+1)%n)
	var tr allreduce.Transport
	var gen uint64
	if p := os.Getenv("SHMRING_CPUPROFILE"); p != "" {
		// Profiling a rank: go test -bench ... with SHMRING_CPUPROFILE=/tmp/rank
		if f, err := os.Create(fmt.Sprintf("%s.%d", p, r)); err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	reply("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "connect":
			gen, _ = strconv.ParseUint(f[1], 10, 64)
			// Wait for the neighbours' segments (they start concurrently).
			deadline := time.Now().Add(10 * time.Second)
			for _, a := range []string{left, right} {
				for {
					p, err := openPeer(SegmentPath(dir, a), a)
					if err == nil {
						p.close()
						break
					}
					if time.Now().After(deadline) {
						reply("error neighbour %s: %v", a, err)
						return 1
					}
					time.Sleep(time.Millisecond)
				}
			}
			tr, err = net.Connect(context.Background(), left, right, gen)
			if err != nil {
				reply("error %v", err)
				continue
			}
			st := tr.(*Transport)
			reply("connected %v %v", st.SendsShared(), st.ReceivesShared())
		case "run":
			step, _ := strconv.ParseUint(f[1], 10, 64)
			iters, _ := strconv.Atoi(f[2])
			ms, _ := strconv.Atoi(f[3])
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(ms)*time.Millisecond)
			cfg := allreduce.Config{Rank: r, Size: n, Generation: gen, FrameBytes: frameBytes}
			c0 := cpuNanos()
			for i := range iters {
				cfg.Step = step + uint64(i)
				if err = allReduce(ctx, tr, cfg); err != nil {
					break
				}
			}
			c1 := cpuNanos()
			cancel()
			if err != nil {
				reply("error %v", err)
				continue
			}
			reply("done %d %d", c1-c0, hash())
		case "quit":
			return 0
		}
	}
	return 0 // stdin closed
}

// rankProc is a rank running in a child process.
type rankProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startRanks starts n ranks in child processes (re-executing the test
// binary) with segments in dir, and waits until they are ready.
func startRanks(tb testing.TB, dir string, n, elems, frameBytes int) []*rankProc {
	tb.Helper()
	return startRanksElem(tb, dir, n, elems, frameBytes, "float32")
}

// startRanksElem is startRanks with buffers of elem (float32 or int64).
func startRanksElem(tb testing.TB, dir string, n, elems, frameBytes int, elem string) []*rankProc {
	tb.Helper()
	ps := make([]*rankProc, n)
	for r := range n {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(),
			fmt.Sprintf("SHMRING_RANK=%d", r), fmt.Sprintf("SHMRING_SIZE=%d", n), "SHMRING_DIR="+dir,
			fmt.Sprintf("SHMRING_ELEMS=%d", elems), fmt.Sprintf("SHMRING_FRAME=%d", frameBytes), "SHMRING_ELEM="+elem)
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			tb.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			tb.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		p := &rankProc{cmd: cmd, in: in, out: bufio.NewScanner(out)}
		ps[r] = p
		tb.Cleanup(func() {
			_ = p.in.Close()
			done := make(chan struct{})
			go func() { _ = p.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = p.cmd.Process.Kill()
				<-done
			}
		})
	}
	for r, p := range ps {
		if got := p.read(tb); got != "ready" {
			tb.Fatalf("rank %d: %s", r, got)
		}
	}
	return ps
}

func (p *rankProc) read(tb testing.TB) string {
	tb.Helper()
	if !p.out.Scan() {
		tb.Fatalf("rank process ended: %v", p.out.Err())
	}
	return p.out.Text()
}

// all sends line to every rank, then collects their answers.
func all(tb testing.TB, ps []*rankProc, line string) []string {
	tb.Helper()
	for _, p := range ps {
		if _, err := io.WriteString(p.in, line+"\n"); err != nil {
			tb.Fatal(err)
		}
	}
	got := make([]string, len(ps))
	for r, p := range ps {
		got[r] = p.read(tb)
	}
	return got
}

// TestSeparateProcesses: two ranks in their own processes all-reduce over
// each other's segments and get the in-memory ring's bits; killing one
// leaves a stale file that is not used and that Listen replaces, and the
// survivor's all-reduce returns at its deadline.
func TestSeparateProcesses(t *testing.T) {
	const n, elems, frameBytes = 2, 1_000_003, 64 << 10
	dir := shmDir(t)
	ps := startRanks(t, dir, n, elems, frameBytes)
	for r, got := range all(t, ps, "connect 1") {
		if got != "connected true true" {
			t.Fatalf("rank %d: %s", r, got)
		}
	}
	bufs := make([][]float32, n)
	for r := range bufs {
		bufs[r] = make([]float32, elems)
		fillRank(bufs[r], r)
	}
	cfg := allreduce.Config{Generation: 1, FrameBytes: frameBytes}
	for step := range uint64(3) {
		cfg.Step = 1 + step
		if _, err := allreduce.RunRing(context.Background(), allreduce.NewInmemRing(n), cfg, bufs); err != nil {
			t.Fatal(err)
		}
	}
	want := fmt.Sprint(hashBits(bufs[0]))
	for r, got := range all(t, ps, "run 1 3 20000") {
		if f := strings.Fields(got); len(f) != 3 || f[0] != "done" || f[2] != want {
			t.Fatalf("rank %d: %s; want done with hash %s", r, got, want)
		}
	}

	// Rank 1 dies in the middle of a long run.
	if _, err := io.WriteString(ps[0].in, "run 10 1000000 1500\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(ps[1].in, "run 10 1000000 60000\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := ps[1].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got := ps[0].read(t)
	if !strings.HasPrefix(got, "error") || !strings.Contains(got, "deadline") || time.Since(start) > 3*time.Second {
		t.Fatalf("survivor: %q after %v, want a deadline error by 1.5 s", got, time.Since(start))
	}
	_ = ps[1].cmd.Wait()
	path := SegmentPath(dir, addrOf(1))
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("killed rank's segment: %v, want it left behind", err)
	}
	if p, err := openPeer(path, addrOf(1)); err == nil {
		p.close()
		t.Fatal("the killed rank's segment passed as live")
	}
	s, err := Listen(dir, addrOf(1))
	if err != nil {
		t.Fatalf("Listen over the killed rank's segment: %v", err)
	}
	_ = s.Close()
}
