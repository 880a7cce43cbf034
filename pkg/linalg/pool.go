package linalg

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// defaultMinPartMACs is the least multiply-add count worth handing to a
// thread: a million MACs take 10-20 us on one core, well above the few
// microseconds it costs to wake a parked worker and wait for it. The last
// layer of the mlp-step network (64 x 1 x 1000, 64K MACs) therefore stays
// on one thread.
const defaultMinPartMACs = 1 << 20

// Pool runs Sgemm and data-parallel loops on a fixed set of threads: the
// calling goroutine and threads-1 persistent worker goroutines, each with
// its own GEMM packing workspace.
//
// Sgemm splits only the output (the M and N loops, on micro-tile
// boundaries) and never the K sum, so every element of C is computed by the
// same micro-kernel calls, in the same order, whatever the thread count: the
// results are bit-identical for any number of threads. How a product is
// split depends only on its shape and the thread count.
//
// A Pool with one thread has no workers and calls straight into its Gemm.
// A Pool is not safe for concurrent use (one call at a time, as for Gemm);
// its methods may be called from any goroutine. The workers stop when the
// Pool is closed or becomes unreachable; after Close the Pool keeps working
// on the calling goroutine alone, with the same results.
type Pool struct {
	c *poolCore
}

// poolCore is the part of a Pool the workers see. It holds no reference to
// the Pool itself, so an unreachable Pool can be collected and its cleanup
// can stop the workers.
type poolCore struct {
	threads int
	minMACs int             // least work per GEMM part (defaultMinPartMACs; tests lower it)
	gemms   []*Gemm         // per-thread workspaces; gemms[0] is the caller's
	start   []chan struct{} // start[i] wakes worker i (1 <= i < threads)
	wg      sync.WaitGroup  // counts the workers still running the current job
	stop    sync.Once
	closed  bool

	job poolJob // the current job, written before the workers are woken
}

// jobKind selects what runPart does.
type jobKind int

const (
	jobLoop jobKind = iota
	jobGemm
	jobFixed // FixedGemmTN with the fused kernel
)

// poolJob describes one parallel call, split into parts (one per thread).
type poolJob struct {
	kind  jobKind
	parts int

	// jobLoop: fn over [0, n).
	fn func(lo, hi int)
	n  int

	// jobGemm: the operands and the tm x tn grid of output parts over the
	// mt x nt micro-tiles of C.
	transA, transB bool
	m, nn, k       int
	alpha, beta    float32
	a, b, cc       []float32
	lda, ldb, ldc  int
	tm, tn, mt, nt int

	// jobFixed: also m, nn, k, a, b, lda, ldb, ldc and the grid above.
	block    int
	fracBits int
	set      bool // FixedGemmTNSet: overwrite C
	ci       []int64
}

// NewPool returns a Pool of threads threads (at least 1) that uses the
// fastest micro-kernel the CPU supports.
func NewPool(threads int) *Pool {
	return newPool(supportedKernels()[0], threads)
}

// NewPoolKernel is NewPool with the named micro-kernel (one of Kernels()).
// Meant for tests and benchmarks.
func NewPoolKernel(kernel string, threads int) (*Pool, error) {
	for _, k := range supportedKernels() {
		if k.name == kernel {
			return newPool(k, threads), nil
		}
	}
	return nil, fmt.Errorf("linalg: micro-kernel %q is not available on this CPU (have %v)", kernel, Kernels())
}

func newPool(k microKernel, threads int) *Pool {
	threads = max(threads, 1)
	c := &poolCore{threads: threads, minMACs: defaultMinPartMACs, gemms: make([]*Gemm, threads)}
	for i := range c.gemms {
		c.gemms[i] = newGemm(k)
	}
	p := &Pool{c: c}
	if threads == 1 {
		return p
	}
	c.start = make([]chan struct{}, threads)
	for i := 1; i < threads; i++ {
		c.start[i] = make(chan struct{})
		go c.work(i)
	}
	runtime.AddCleanup(p, (*poolCore).shutdown, c)
	return p
}

// Threads returns the number of threads the Pool was created with.
func (p *Pool) Threads() int { return p.c.threads }

// Kernel reports which micro-kernel the Pool's GEMMs use.
func (p *Pool) Kernel() string { return p.c.gemms[0].Kernel() }

// Close stops the worker goroutines. Later calls run on the calling
// goroutine alone (with bit-identical results). Close is idempotent.
func (p *Pool) Close() { p.c.shutdown() }

func (c *poolCore) shutdown() {
	c.stop.Do(func() {
		c.closed = true
		for _, ch := range c.start[min(1, len(c.start)):] {
			close(ch)
		}
	})
}

// work is the loop of worker i: run part i of each job it is woken for.
func (c *poolCore) work(i int) {
	for range c.start[i] {
		c.runPart(i)
		c.wg.Done()
	}
}

// run executes the job in c.job on parts threads: parts 1.. on the workers,
// part 0 on the caller, and returns when all are done.
func (c *poolCore) run() {
	parts := c.job.parts
	c.wg.Add(parts - 1)
	for i := 1; i < parts; i++ {
		c.start[i] <- struct{}{}
	}
	c.runPart(0)
	c.wg.Wait()
	c.job = poolJob{} // drop references to the caller's slices and closure
}

// usable returns how many threads a job may use right now.
func (c *poolCore) usable() int {
	if c.closed {
		return 1
	}
	return c.threads
}

func (c *poolCore) runPart(i int) {
	j := &c.job
	switch j.kind {
	case jobLoop:
		lo, hi := i*j.n/j.parts, (i+1)*j.n/j.parts
		if lo < hi {
			j.fn(lo, hi)
		}
	case jobGemm:
		g := c.gemms[i]
		mr, nr := g.kern.mr, g.kern.nr
		pi, pj := i/j.tn, i%j.tn
		i0, i1 := pi*j.mt/j.tm*mr, min((pi+1)*j.mt/j.tm*mr, j.m)
		j0, j1 := pj*j.nt/j.tn*nr, min((pj+1)*j.nt/j.tn*nr, j.nn)
		if i0 >= i1 || j0 >= j1 {
			return
		}
		// The sub-problem starts on a tile boundary of C, so its tiles (and
		// which of them are partial) are exactly those of the whole product.
		aoff, boff := i0*j.lda, j0
		if j.transA {
			aoff = i0
		}
		if j.transB {
			boff = j0 * j.ldb
		}
		g.gemm(j.transA, j.transB, i1-i0, j1-j0, j.k, j.alpha, j.a[aoff:], j.lda,
			j.b[boff:], j.ldb, j.beta, j.cc[i0*j.ldc+j0:], j.ldc)
	case jobFixed:
		// As jobGemm with A transposed and B not; the part's max goes to
		// its workspace for the caller to combine.
		g := c.gemms[i]
		mr, nr := g.fixed.mr, g.fixed.nr
		pi, pj := i/j.tn, i%j.tn
		i0, i1 := pi*j.mt/j.tm*mr, min((pi+1)*j.mt/j.tm*mr, j.m)
		j0, j1 := pj*j.nt/j.tn*nr, min((pj+1)*j.nt/j.tn*nr, j.nn)
		g.fixedMax = 0
		if i0 < i1 && j0 < j1 {
			g.fixedMax = g.fixedGemm(i1-i0, j1-j0, j.k, j.block, j.a[i0:], j.lda,
				j.b[j0:], j.ldb, j.fracBits, j.ci[i0*j.ldc+j0:], j.ldc, j.set)
		}
	}
}

// For calls fn on contiguous ranges [lo, hi) that partition [0, n), one
// range per thread, running them concurrently. It uses at most n/grain
// threads (grain is the least number of items worth a thread of its own),
// so with n < 2*grain, or on a one-thread Pool, it is just fn(0, n). The
// ranges depend only on n, grain and the thread count. fn must be safe to
// run concurrently on disjoint ranges and must not call back into the same
// Pool (its jobs do not nest). A nil Pool runs fn(0, n).
func (p *Pool) For(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	parts := 1
	if p != nil {
		parts = min(p.c.usable(), n/max(grain, 1))
	}
	if parts <= 1 {
		fn(0, n)
		return
	}
	c := p.c
	c.job = poolJob{kind: jobLoop, parts: parts, fn: fn, n: n}
	c.run()
}

// Sgemm is Gemm.Sgemm computed on the Pool's threads, bit-identical to the
// one-thread result.
func (p *Pool) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	pc := p.c
	g := pc.gemms[0]
	checkSgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	tm, tn := splitGrid(m, n, k, g.kern.mr, g.kern.nr, pc.usable(), pc.minMACs)
	if tm*tn == 1 {
		g.gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	pc.job = poolJob{
		kind: jobGemm, parts: tm * tn,
		transA: transA, transB: transB, m: m, nn: n, k: k, alpha: alpha, beta: beta,
		a: a, b: b, cc: c, lda: lda, ldb: ldb, ldc: ldc,
		tm: tm, tn: tn, mt: (m + g.kern.mr - 1) / g.kern.mr, nt: (n + g.kern.nr - 1) / g.kern.nr,
	}
	pc.run()
}

// splitGrid chooses how to cut an m x n product of depth k into tm x tn
// parts (tm*tn <= threads) of whole mr x nr tiles. Each part costs its
// rows*cols*k multiply-adds plus packing its rows of op(A) and columns of
// op(B), (rows+cols)*k floats at roughly packCost multiply-adds each; the
// grid minimizes the cost of the largest part, preferring fewer threads on
// ties. Parts get at least minMACs multiply-adds on average.
func splitGrid(m, n, k, mr, nr, threads, minMACs int) (tm, tn int) {
	const packCost = 8
	mt, nt := (m+mr-1)/mr, (n+nr-1)/nr
	threads = min(threads, m*n*k/max(minMACs, 1), mt*nt)
	tm, tn = 1, 1
	best := -1
	for t := 1; t <= threads; t++ {
		for a := 1; a <= t; a++ {
			if t%a != 0 || a > mt || t/a > nt {
				continue
			}
			b := t / a
			rows := min((mt+a-1)/a*mr, m)
			cols := min((nt+b-1)/b*nr, n)
			cost := rows*cols + packCost*(rows+cols)
			if best < 0 || cost < best {
				best, tm, tn = cost, a, b
			}
		}
	}
	return tm, tn
}

// AllFinite reports whether x holds no NaN or infinity, scanning ranges on
// the pool's threads (a predicate: no rounding is involved).
func (p *Pool) AllFinite(x []float32) bool {
	const grain = 256 << 10
	if p == nil || p.Threads() == 1 || len(x) < 2*grain {
		return AllFinite(x)
	}
	var bad atomic.Bool
	p.For(len(x), grain, func(lo, hi int) {
		if !AllFinite(x[lo:hi]) {
			bad.Store(true)
		}
	})
	return !bad.Load()
}
