package linalg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// poolThreads are the thread counts whose results must be bit-identical.
var poolThreads = []int{1, 2, 3, 4, 7}

// testPool returns a pool of threads threads with the named kernel. With
// tiny true its workspaces use the tiny cache blocks of testGemms (several
// kc, mc and nc blocks on small shapes) and every product is split, however
// small, so that small shapes exercise the split.
func testPool(t testing.TB, kernel string, threads int, tiny bool) *Pool {
	t.Helper()
	p, err := NewPoolKernel(kernel, threads)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	if tiny {
		p.c.minMACs = 1
		for _, g := range p.c.gemms {
			g.kcMax = 7
			g.aBytes = 4 * 7 * 2 * g.kern.mr
			g.bBytes = 4 * 7 * 2 * g.kern.nr
		}
	}
	return p
}

// poolOperands builds the stored operands of one case deterministically; C
// has sentinel padding and NaNs when beta == 0 (they must be ignored).
func poolOperands(tc gemmCase, transA, transB bool, beta float32) (a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	r := rand.New(rand.NewPCG(uint64(tc.m*1000003+tc.n*1009+tc.k), 99))
	m, n, k := tc.m, tc.n, tc.k
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	lda, ldb, ldc = ac+tc.padA, bc+tc.padB, n+tc.padC
	a = randSlice(r, max(0, (ar-1)*lda+ac))
	b = randSlice(r, max(0, (br-1)*ldb+bc))
	c = make([]float32, max(0, (m-1)*ldc+n))
	for i := range c {
		c[i] = sentinel
	}
	for i := range m {
		for j := range n {
			if beta == 0 {
				c[i*ldc+j] = float32(math.NaN())
			} else {
				c[i*ldc+j] = float32(r.NormFloat64())
			}
		}
	}
	return a, lda, b, ldb, c, ldc
}

// firstBitDiff returns the index of the first element whose bits differ, or -1.
func firstBitDiff(x, y []float32) int {
	for i := range x {
		if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
			return i
		}
	}
	return -1
}

// TestPoolSgemmBitIdenticalForAnyThreadCount runs every case on 1, 2, 3, 4
// and 7 threads: the outputs (padding included) must have the same bits,
// and the 1-thread output must match the float64 reference.
func TestPoolSgemmBitIdenticalForAnyThreadCount(t *testing.T) {
	cases := []gemmCase{
		{m: 1, n: 1, k: 1},
		{m: 3, n: 5, k: 2},    // smaller than one tile of every kernel
		{m: 7, n: 13, k: 5},   // odd, partial tiles
		{m: 1, n: 300, k: 37}, // one row
		{m: 200, n: 1, k: 37}, // one column
		{m: 8, n: 48, k: 16},  // exactly one avx512 tile
		{m: 17, n: 97, k: 30}, // partial tiles in both directions
		{m: 64, n: 200, k: 31},
		{m: 65, n: 151, k: 70, padA: 3, padB: 5, padC: 7},
		{m: 129, n: 49, k: 19, padA: 1, padB: 17, padC: 2},
	}
	alphaBeta := []struct{ alpha, beta float32 }{{1, 0}, {1, 1}, {0.5, -1.5}, {-2, 0.25}}
	splits := 0
	for _, kernel := range Kernels() {
		for _, tiny := range []bool{false, true} {
			pools := make([]*Pool, len(poolThreads))
			for i, th := range poolThreads {
				pools[i] = testPool(t, kernel, th, tiny)
			}
			for _, tc := range cases {
				for _, ta := range []bool{false, true} {
					for _, tb := range []bool{false, true} {
						for _, ab := range alphaBeta {
							name := fmt.Sprintf("kernel=%s/tiny=%v/%v/tA=%v/tB=%v/alpha=%g/beta=%g", kernel, tiny, tc, ta, tb, ab.alpha, ab.beta)
							a, lda, b, ldb, c0, ldc := poolOperands(tc, ta, tb, ab.beta)
							want, scale := refGemm(ta, tb, tc.m, tc.n, tc.k, ab.alpha, a, lda, b, ldb, ab.beta, c0, ldc)
							var first []float32
							for i, p := range pools {
								c := append([]float32(nil), c0...)
								p.Sgemm(ta, tb, tc.m, tc.n, tc.k, ab.alpha, a, lda, b, ldb, ab.beta, c, ldc)
								if i == 0 {
									first = c
									checkAgainstRef(t, name, c, ldc, tc, want, scale)
									continue
								}
								g := p.c.gemms[0]
								if tm, tn := splitGrid(tc.m, tc.n, tc.k, g.kern.mr, g.kern.nr, p.c.threads, p.c.minMACs); tm*tn > 1 {
									splits++
								}
								if d := firstBitDiff(first, c); d >= 0 {
									t.Errorf("%s: threads=%d: c[%d] = %g (%#08x), threads=1 gave %g (%#08x)", name, p.Threads(),
										d, c[d], math.Float32bits(c[d]), first[d], math.Float32bits(first[d]))
								}
							}
						}
					}
				}
			}
		}
	}
	if splits == 0 {
		t.Fatal("no case was split among threads: the test checks nothing")
	}
}

// checkAgainstRef compares C with the float64 reference within tolerance
// and checks that the padding between rows kept its sentinel.
func checkAgainstRef(t *testing.T, name string, c []float32, ldc int, tc gemmCase, want, scale []float64) {
	t.Helper()
	tol := tolerance(tc.k)
	for i := range tc.m {
		for j := range tc.n {
			got, w := float64(c[i*ldc+j]), want[i*tc.n+j]
			if diff := math.Abs(got - w); !(diff <= tol*scale[i*tc.n+j]+1e-30) {
				t.Fatalf("%s: C[%d][%d] = %g, want %g", name, i, j, got, w)
			}
		}
		for j := tc.n; j < ldc && i*ldc+j < len(c); j++ {
			if math.Float32bits(c[i*ldc+j]) != math.Float32bits(sentinel) {
				t.Fatalf("%s: padding C[%d][%d] was overwritten with %g", name, i, j, c[i*ldc+j])
			}
		}
	}
}

// TestPoolSgemmTrainingShapesBitIdentical runs the five mlp-step GEMMs with
// the default blocking and split threshold (the production path) and
// compares the bits of every thread count with one thread and with a Gemm.
func TestPoolSgemmTrainingShapesBitIdentical(t *testing.T) {
	for _, kernel := range Kernels() {
		if kernel == KernelGeneric {
			// 70x slower on these shapes; the split is the same for every
			// kernel, and TestPoolSgemmBitIdenticalForAnyThreadCount runs
			// the generic kernel on small shapes.
			continue
		}
		g, _ := NewKernel(kernel)
		for _, s := range mlpShapes {
			a, lda, bm, ldb, c0 := s.operands()
			want := append([]float32(nil), c0...)
			g.Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, s.beta, want, s.n)
			for _, th := range poolThreads {
				p := testPool(t, kernel, th, false)
				c := append([]float32(nil), c0...)
				p.Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, s.beta, c, s.n)
				if d := firstBitDiff(want, c); d >= 0 {
					t.Errorf("kernel=%s shape=%s threads=%d: c[%d] = %g, Gemm gave %g", kernel, s.name, th, d, c[d], want[d])
				}
			}
		}
	}
}

func TestSplitGrid(t *testing.T) {
	const mr, nr = 8, 48
	tests := []struct {
		name           string
		m, n, k, th    int
		wantParts      int
		wantTM, wantTN int // 0: not checked
	}{
		{"one thread", 64, 1000, 784, 1, 1, 1, 1},
		{"tiny product stays serial", 64, 1, 1000, 4, 1, 1, 1},
		{"small product stays serial", 30, 40, 50, 7, 1, 1, 1},
		{"fwd1 on 2 threads splits columns", 64, 1000, 784, 2, 2, 1, 2},
		{"dW2 on 2 threads", 1000, 1000, 64, 2, 2, 0, 0},
		{"no more parts than tiles", 8, 96, 4096, 7, 2, 1, 2},
	}
	for _, tc := range tests {
		tm, tn := splitGrid(tc.m, tc.n, tc.k, mr, nr, tc.th, defaultMinPartMACs)
		if tm*tn != tc.wantParts || (tc.wantTM != 0 && (tm != tc.wantTM || tn != tc.wantTN)) {
			t.Errorf("%s: splitGrid = %d x %d, want %d parts (%d x %d)", tc.name, tm, tn, tc.wantParts, tc.wantTM, tc.wantTN)
		}
	}
	// Whatever the shape, the grid fits the threads and the tiles.
	for m := 1; m < 100; m += 7 {
		for n := 1; n < 300; n += 13 {
			for th := 1; th <= 8; th++ {
				tm, tn := splitGrid(m, n, 5, mr, nr, th, 1)
				if tm < 1 || tn < 1 || tm*tn > th || tm > (m+mr-1)/mr || tn > (n+nr-1)/nr {
					t.Fatalf("splitGrid(%d, %d, threads=%d) = %d x %d", m, n, th, tm, tn)
				}
			}
		}
	}
}

func TestPoolFor(t *testing.T) {
	var nilPool *Pool
	for _, th := range poolThreads {
		p := testPool(t, KernelGeneric, th, false)
		for _, p := range []*Pool{p, nilPool} {
			for _, tc := range []struct{ n, grain, wantParts int }{
				{0, 1, 0}, {1, 1, 1}, {5, 1, min(5, th)}, {100, 30, min(3, th)}, {100, 60, 1}, {1000, 1, th},
			} {
				if p == nil {
					tc.wantParts = min(tc.wantParts, 1)
				}
				seen := make([]atomic.Int32, tc.n)
				var parts atomic.Int32
				p.For(tc.n, tc.grain, func(lo, hi int) {
					parts.Add(1)
					for i := lo; i < hi; i++ {
						seen[i].Add(1)
					}
				})
				for i := range seen {
					if v := seen[i].Load(); v != 1 {
						t.Fatalf("threads=%d nil=%v n=%d: item %d visited %d times", th, p == nil, tc.n, i, v)
					}
				}
				if got := int(parts.Load()); got != tc.wantParts {
					t.Errorf("threads=%d nil=%v n=%d grain=%d: %d parts, want %d", th, p == nil, tc.n, tc.grain, got, tc.wantParts)
				}
			}
		}
	}
}

// TestPoolClose: a closed pool still computes, alone, the same bits.
func TestPoolClose(t *testing.T) {
	s := mlpShapes[0]
	a, lda, bm, ldb, c0 := s.operands()
	p := NewPool(3)
	want := append([]float32(nil), c0...)
	p.Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, s.beta, want, s.n)
	p.Close()
	p.Close()
	c := append([]float32(nil), c0...)
	p.Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, s.beta, c, s.n)
	if d := firstBitDiff(want, c); d >= 0 {
		t.Fatalf("after Close: c[%d] = %g, want %g", d, c[d], want[d])
	}
	calls := 0
	p.For(1000, 1, func(lo, hi int) { calls++ })
	if calls != 1 {
		t.Fatalf("For on a closed pool made %d calls, want 1", calls)
	}
}

// TestPoolSgemmNoAllocs: a split Sgemm allocates nothing once the
// workspaces have grown.
func TestPoolSgemmNoAllocs(t *testing.T) {
	s := mlpShapes[0]
	a, lda, bm, ldb, c := s.operands()
	p := testPool(t, Kernels()[0], 2, false)
	p.Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, s.beta, c, s.n)
	allocs := testing.AllocsPerRun(3, func() {
		p.Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, s.beta, c, s.n)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per call, want 0", allocs)
	}
}

// TestPoolWorkersExit: the workers stop on Close and when an unclosed Pool
// becomes unreachable, so replacing a Pool (Network.SetThreads) leaks none.
// poolWorkers counts the goroutines running a pool's worker loop.
func poolWorkers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "(*poolCore).work(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

func TestPoolWorkersExit(t *testing.T) {
	waitWorkers := func(what string, want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for poolWorkers() > want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d pool workers, want at most %d", what, poolWorkers(), want)
			}
			runtime.GC()
			time.Sleep(time.Millisecond)
		}
	}
	// Pools that earlier tests dropped are collected at the GC's pace:
	// wait until none of their workers is left, so the counts below are
	// this test's alone.
	waitWorkers("pools of earlier tests", 0)
	p := NewPool(4)
	// Its 3 workers may not have been scheduled yet: poll.
	for deadline := time.Now().Add(5 * time.Second); poolWorkers() != 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a 4-thread pool runs %d worker goroutines, want 3", poolWorkers())
		}
	}
	p.Close()
	waitWorkers("after Close", 0)
	func() {
		p := NewPool(4)
		p.For(100, 1, func(lo, hi int) {})
	}()
	waitWorkers("after the pool became unreachable", 0)
}

func TestPoolAllFinite(t *testing.T) {
	x := make([]float32, 3<<20)
	for _, th := range []int{1, 2, 3} {
		p := NewPool(th)
		if !p.AllFinite(x) {
			t.Fatalf("threads=%d: zeros reported non-finite", th)
		}
		for _, i := range []int{0, 1 << 20, len(x) - 1} {
			x[i] = float32(math.Inf(-1))
			if p.AllFinite(x) {
				t.Fatalf("threads=%d: -Inf at %d missed", th, i)
			}
			x[i] = 0
		}
		p.Close()
	}
	var nilPool *Pool
	if !nilPool.AllFinite([]float32{1, 2}) {
		t.Fatal("nil pool")
	}
}
