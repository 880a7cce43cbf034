package linalg

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// mlpShape is one of the five GEMMs of an "mlp-step" training step
// (784-1000-1000-1, batch 64), exactly as the engine calls them.
type mlpShape struct {
	name           string
	transA, transB bool
	m, n, k        int
	beta           float32
}

var mlpShapes = []mlpShape{
	{name: "fwd1", transB: true, m: 64, n: 1000, k: 784},          // Y1 = X * W1^T
	{name: "fwd2", transB: true, m: 64, n: 1000, k: 1000},         // Y2 = Y1 * W2^T
	{name: "dW2", transA: true, m: 1000, n: 1000, k: 64, beta: 1}, // dW2 += dT2^T * Y1
	{name: "dX1", m: 64, n: 1000, k: 1000},                        // dX1 = dT2 * W2
	{name: "dW1", transA: true, m: 1000, n: 784, k: 64, beta: 1},  // dW1 += dT1^T * X
}

// operands allocates the row-major operands of s with tight strides.
func (s mlpShape) operands() (a []float32, lda int, b []float32, ldb int, c []float32) {
	r := rand.New(rand.NewPCG(11, 12))
	lda, ldb = s.k, s.n
	if s.transA {
		lda = s.m
	}
	if s.transB {
		ldb = s.k
	}
	return randSlice(r, s.m*s.k), lda, randSlice(r, s.k*s.n), ldb, randSlice(r, s.m*s.n)
}

// sgemmer is what the benchmarks drive: a Gemm or a Pool.
type sgemmer interface {
	Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
		b []float32, ldb int, beta float32, c []float32, ldc int)
}

func benchShape(b *testing.B, g sgemmer, s mlpShape) {
	a, lda, bm, ldb, c := s.operands()
	g.Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, s.beta, c, s.n) // warm-up: grow workspace
	b.ResetTimer()
	for b.Loop() {
		g.Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, s.beta, c, s.n)
	}
	flops := 2 * float64(s.m) * float64(s.n) * float64(s.k) * float64(b.N)
	b.ReportMetric(flops/float64(b.Elapsed().Nanoseconds()), "GFLOP/s")
}

// BenchmarkSgemm measures the five mlp-step GEMMs with every supported
// kernel (the generic one on fwd1 only; it is an order of magnitude slower)
// on a Pool of 1 and 2 threads (threads=1 is a plain Gemm call).
func BenchmarkSgemm(b *testing.B) {
	for _, name := range Kernels() {
		for _, s := range mlpShapes {
			if name == KernelGeneric && s.name != "fwd1" {
				continue
			}
			for _, th := range []int{1, 2} {
				p, err := NewPoolKernel(name, th)
				if err != nil {
					b.Fatal(err)
				}
				b.Run(fmt.Sprintf("shape=%s/kernel=%s/threads=%d", s.name, name, th), func(b *testing.B) {
					benchShape(b, p, s)
				})
				p.Close()
			}
		}
	}
}

// BenchmarkMLPStep runs the five GEMMs of one mlp-step back to back with the
// default kernel and reports the step's GEMM throughput.
func BenchmarkMLPStep(b *testing.B) {
	g := New()
	type ops struct {
		a    []float32
		lda  int
		bm   []float32
		ldb  int
		c    []float32
		spec mlpShape
	}
	all := make([]ops, len(mlpShapes))
	var macs float64
	for i, s := range mlpShapes {
		a, lda, bm, ldb, c := s.operands()
		all[i] = ops{a, lda, bm, ldb, c, s}
		macs += float64(s.m) * float64(s.n) * float64(s.k)
	}
	step := func() {
		for _, o := range all {
			s := o.spec
			g.Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, o.a, o.lda, o.bm, o.ldb, s.beta, o.c, s.n)
		}
	}
	step()
	b.ResetTimer()
	for b.Loop() {
		step()
	}
	ns := float64(b.Elapsed().Nanoseconds())
	b.ReportMetric(2*macs*float64(b.N)/ns, "GFLOP/s")
	b.ReportMetric(64*float64(b.N)/(ns/1e9), "samples/s")
}
