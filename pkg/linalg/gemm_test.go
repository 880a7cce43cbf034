package linalg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// refGemm is the float64 triple-loop reference for C = alpha*op(A)*op(B) + beta*C.
// It also returns, per element, the scale alpha*sum|a||b| + |beta*c| that the
// error bound in checkClose is relative to.
func refGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) (want, scale []float64) {
	want = make([]float64, m*n)
	scale = make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s, abs float64
			for p := range k {
				var av, bv float64
				if transA {
					av = float64(a[p*lda+i])
				} else {
					av = float64(a[i*lda+p])
				}
				if transB {
					bv = float64(b[j*ldb+p])
				} else {
					bv = float64(b[p*ldb+j])
				}
				s += av * bv
				abs += math.Abs(av * bv)
			}
			v := float64(alpha) * s
			sc := math.Abs(float64(alpha)) * abs
			if beta != 0 {
				cv := float64(c[i*ldc+j])
				v += float64(beta) * cv
				sc += math.Abs(float64(beta) * cv)
			}
			want[i*n+j] = v
			scale[i*n+j] = sc
		}
	}
	return want, scale
}

// tolerance is the relative error allowed against the float64 reference.
// A float32 dot product of length k accumulates k roundings of at most
// 2^-24 relative to the running sum of |terms|; with the blocked order (the
// kernels sum in kc-long chains, then add blocks) the error grows like
// sqrt(k) * 2^-24 on random data and is bounded by k * 2^-24 in the worst
// case. 1e-5*sqrt(k) is about 170*sqrt(k) ulps: loose enough never to
// flag rounding, and still orders of magnitude below the O(1) relative error
// of any indexing, packing or edge-handling mistake.
func tolerance(k int) float64 {
	return 1e-5 * math.Sqrt(float64(max(k, 1)))
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// sentinel marks the padding between rows of C; it must survive every call.
var sentinel = float32(math.Float32frombits(0x7fc0dead)) // a quiet NaN with a recognisable payload

type gemmCase struct {
	m, n, k    int
	padA, padB int // extra stride beyond the stored row width
	padC       int
}

func (tc gemmCase) String() string {
	return fmt.Sprintf("%dx%dx%d_pad%d.%d.%d", tc.m, tc.n, tc.k, tc.padA, tc.padB, tc.padC)
}

// runCase runs one Sgemm against the reference and reports mismatches,
// writes outside C, and NaN propagation from C when beta == 0.
func runCase(t *testing.T, g *Gemm, r *rand.Rand, tc gemmCase, transA, transB bool, alpha, beta float32) {
	t.Helper()
	m, n, k := tc.m, tc.n, tc.k
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	lda, ldb, ldc := ac+tc.padA, bc+tc.padB, n+tc.padC
	a := randSlice(r, max(0, (ar-1)*lda+ac))
	b := randSlice(r, max(0, (br-1)*ldb+bc))
	c := make([]float32, max(0, (m-1)*ldc+n))
	for i := range c {
		c[i] = sentinel
	}
	for i := range m {
		for j := range n {
			if beta == 0 {
				c[i*ldc+j] = float32(math.NaN()) // must be ignored
			} else {
				c[i*ldc+j] = float32(r.NormFloat64())
			}
		}
	}
	want, scale := refGemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	g.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

	tol := tolerance(k)
	bad := 0
	for i := range m {
		for j := range n {
			got := float64(c[i*ldc+j])
			w := want[i*n+j]
			if diff := math.Abs(got - w); !(diff <= tol*scale[i*n+j]+1e-30) {
				if bad < 5 {
					t.Errorf("C[%d][%d] = %g, want %g (diff %g > %g)", i, j, got, w, diff, tol*scale[i*n+j])
				}
				bad++
			}
		}
		for j := n; j < ldc && i*ldc+j < len(c); j++ {
			if math.Float32bits(c[i*ldc+j]) != math.Float32bits(sentinel) {
				t.Fatalf("padding C[%d][%d] was overwritten with %g", i, j, c[i*ldc+j])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d elements wrong", bad, m*n)
	}
}

// testGemms returns one Gemm per supported kernel with default blocking, and
// one per kernel with tiny cache blocks so that small shapes cross every
// block boundary (several kc, mc and nc blocks, beta switching to 1).
func testGemms(t *testing.T) map[string]*Gemm {
	t.Helper()
	gs := map[string]*Gemm{}
	for _, name := range Kernels() {
		g, err := NewKernel(name)
		if err != nil {
			t.Fatal(err)
		}
		gs["kernel="+name] = g
		tiny, _ := NewKernel(name)
		tiny.kcMax = 7
		tiny.aBytes = 4 * 7 * 2 * tiny.kern.mr // mc = 2*mr
		tiny.bBytes = 4 * 7 * 2 * tiny.kern.nr // nc = 2*nr
		gs["kernel="+name+"/blocks=tiny"] = tiny
	}
	return gs
}

func TestKernelsListed(t *testing.T) {
	ks := Kernels()
	if len(ks) == 0 || ks[len(ks)-1] != KernelGeneric {
		t.Fatalf("Kernels() = %v, want a list ending in %q", ks, KernelGeneric)
	}
	if got := New().Kernel(); got != ks[0] {
		t.Errorf("New().Kernel() = %q, want the fastest supported %q", got, ks[0])
	}
	if _, err := NewKernel("sse9"); err == nil || !strings.Contains(err.Error(), "sse9") {
		t.Errorf("NewKernel(sse9) error = %v, want one naming the kernel", err)
	}
}

func TestSgemm(t *testing.T) {
	small := []gemmCase{
		{m: 1, n: 1, k: 1},
		{m: 7, n: 13, k: 5},
		{m: 1, n: 100, k: 37},
		{m: 50, n: 1, k: 37},
		{m: 33, n: 70, k: 1},
		{m: 8, n: 48, k: 16},  // exactly one avx512 tile
		{m: 12, n: 32, k: 9},  // exactly avx2 tiles
		{m: 17, n: 97, k: 30}, // partial tiles in both directions
		{m: 9, n: 50, k: 20, padA: 3, padB: 5, padC: 7},
		{m: 30, n: 41, k: 64, padA: 1, padB: 17, padC: 2},
	}
	alphaBeta := []struct{ alpha, beta float32 }{
		{1, 0}, {1, 1}, {0.5, -1.5}, {-2, 0}, {0, 0.25}, {0, 0}, {1, -0.0},
	}
	for name, g := range testGemms(t) {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			for _, tc := range small {
				for _, ta := range []bool{false, true} {
					for _, tb := range []bool{false, true} {
						for _, ab := range alphaBeta {
							t.Run(fmt.Sprintf("%v/tA=%v/tB=%v/alpha=%g/beta=%g", tc, ta, tb, ab.alpha, ab.beta), func(t *testing.T) {
								runCase(t, g, r, tc, ta, tb, ab.alpha, ab.beta)
							})
						}
					}
				}
			}
		})
	}
}

// TestSgemmLarge covers a shape larger than every default block in m, n and
// k (65 rows: partial tiles for every kernel; 1001 columns; k = 785 gives two
// depth blocks), with strides, in all four transpose combinations.
func TestSgemmLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large shapes skipped in -short mode")
	}
	tc := gemmCase{m: 65, n: 1001, k: 785, padA: 3, padB: 1, padC: 5}
	for _, name := range Kernels() {
		g, err := NewKernel(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				t.Run(fmt.Sprintf("kernel=%s/tA=%v/tB=%v", name, ta, tb), func(t *testing.T) {
					r := rand.New(rand.NewPCG(3, 4))
					runCase(t, g, r, tc, ta, tb, 0.75, 0.5)
				})
			}
		}
	}
}

func TestSgemmPanics(t *testing.T) {
	s := make([]float32, 100)
	cases := []struct {
		name string
		call func(g *Gemm)
		want string
	}{
		{"negative m", func(g *Gemm) { g.Sgemm(false, false, -1, 2, 2, 1, s, 2, s, 2, 0, s, 2) }, "negative dimension"},
		{"lda too small", func(g *Gemm) { g.Sgemm(false, false, 2, 2, 3, 1, s, 2, s, 2, 0, s, 2) }, "lda = 2"},
		{"lda too small transposed", func(g *Gemm) { g.Sgemm(true, false, 4, 2, 3, 1, s, 3, s, 2, 0, s, 2) }, "lda = 3"},
		{"ldb too small", func(g *Gemm) { g.Sgemm(false, true, 2, 2, 3, 1, s, 3, s, 2, 0, s, 2) }, "ldb = 2"},
		{"ldc too small", func(g *Gemm) { g.Sgemm(false, false, 2, 5, 3, 1, s, 3, s, 5, 0, s, 4) }, "ldc = 4"},
		{"a short", func(g *Gemm) { g.Sgemm(false, false, 20, 2, 10, 1, s, 10, s, 2, 0, s, 2) }, "len(a) = 100"},
		{"b short", func(g *Gemm) { g.Sgemm(false, false, 2, 10, 20, 1, s, 20, s, 10, 0, s, 10) }, "len(b) = 100"},
		{"c short", func(g *Gemm) { g.Sgemm(false, false, 11, 10, 2, 1, s, 2, s, 10, 0, s, 10) }, "len(c) = 100"},
	}
	g := New()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				msg, _ := r.(string)
				if !strings.Contains(msg, tc.want) {
					t.Errorf("panic = %v, want a message containing %q", r, tc.want)
				}
			}()
			tc.call(g)
		})
	}
}

// TestSgemmNoAllocs checks the zero-allocation promise once the workspace has
// grown to the problem size.
func TestSgemmNoAllocs(t *testing.T) {
	const m, n, k = 64, 200, 300
	r := rand.New(rand.NewPCG(5, 6))
	a, b, c := randSlice(r, m*k), randSlice(r, k*n), randSlice(r, m*n)
	for _, name := range Kernels() {
		g, _ := NewKernel(name)
		for _, tr := range [][2]bool{{false, true}, {true, false}, {false, false}} {
			lda, ldb := k, n
			if tr[0] {
				lda = m
			}
			if tr[1] {
				ldb = k
			}
			allocs := testing.AllocsPerRun(3, func() {
				g.Sgemm(tr[0], tr[1], m, n, k, 1, a, lda, b, ldb, 1, c, n)
			})
			if allocs != 0 {
				t.Errorf("kernel=%s trans=%v: %v allocations per call, want 0", name, tr, allocs)
			}
		}
	}
}

// FuzzSgemm compares every kernel against the reference on small random shapes.
func FuzzSgemm(f *testing.F) {
	f.Add(uint8(3), uint8(5), uint8(7), uint8(0), uint8(1), uint64(1))
	f.Add(uint8(9), uint8(49), uint8(1), uint8(3), uint8(2), uint64(2))
	f.Add(uint8(1), uint8(1), uint8(1), uint8(1), uint8(0), uint64(3))
	f.Fuzz(func(t *testing.T, m, n, k, trans, pad uint8, seed uint64) {
		tc := gemmCase{m: int(m%40) + 1, n: int(n%100) + 1, k: int(k%70) + 1,
			padA: int(pad % 3), padB: int(pad/3) % 3, padC: int(pad/9) % 3}
		r := rand.New(rand.NewPCG(seed, 7))
		alpha := float32(r.IntN(5)) - 2
		beta := float32(r.IntN(3)) - 1
		for _, name := range Kernels() {
			g, _ := NewKernel(name)
			runCase(t, g, r, tc, trans&1 != 0, trans&2 != 0, alpha, beta)
		}
	})
}
