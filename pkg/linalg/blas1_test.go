package linalg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestSaxpySdot(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, n := range []int{0, 1, 3, 4, 5, 17, 1000} {
		for _, alpha := range []float32{0, 1, -0.5} {
			t.Run(fmt.Sprintf("n=%d/alpha=%g", n, alpha), func(t *testing.T) {
				x, y := randSlice(r, n), randSlice(r, n)
				y0 := append([]float32(nil), y...)
				var wantDot, scale float64
				for i := range x {
					wantDot += float64(x[i]) * float64(y[i])
					scale += math.Abs(float64(x[i]) * float64(y[i]))
				}
				if got := float64(Sdot(x, y)); math.Abs(got-wantDot) > tolerance(n)*scale {
					t.Errorf("Sdot = %g, want %g", got, wantDot)
				}
				Saxpy(alpha, x, y)
				for i := range y {
					want := float64(y0[i]) + float64(alpha)*float64(x[i])
					if math.Abs(float64(y[i])-want) > 1e-6*(math.Abs(want)+1) {
						t.Fatalf("Saxpy: y[%d] = %g, want %g", i, y[i], want)
					}
				}
			})
		}
	}
}

func TestSaxpySdotPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"Saxpy": func() { Saxpy(1, make([]float32, 3), make([]float32, 4)) },
		"Sdot":  func() { Sdot(make([]float32, 3), make([]float32, 4)) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				msg, _ := recover().(string)
				if !strings.Contains(msg, "length mismatch") {
					t.Errorf("panic = %q, want a length mismatch message", msg)
				}
			}()
			f()
		})
	}
}

// TestSaxpyVectorMatchesPortableBitForBit: replicas on CPUs with and without
// AVX must apply identical updates.
func TestSaxpyVectorMatchesPortableBitForBit(t *testing.T) {
	for _, n := range []int{0, 1, 31, 32, 33, 100, 1000, 4099} {
		x := make([]float32, n)
		y1 := make([]float32, n)
		for i := range x {
			x[i] = float32(math.Sin(float64(i)*1.7)) * 1e3
			y1[i] = float32(math.Cos(float64(i)*0.3)) / 7
		}
		y2 := append([]float32(nil), y1...)
		Saxpy(-0.0123, x, y1)
		axpyGo(-0.0123, x, y2)
		for i := range y1 {
			if math.Float32bits(y1[i]) != math.Float32bits(y2[i]) {
				t.Fatalf("n=%d: element %d: %v (vector) vs %v (portable)", n, i, y1[i], y2[i])
			}
		}
	}
}

func TestAllFinite(t *testing.T) {
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
	for _, n := range []int{0, 1, 31, 32, 33, 64, 100, 1000} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i) * 1e30 // large but finite
		}
		if !AllFinite(x) || !allFiniteGo(x) {
			t.Fatalf("n=%d: finite values reported non-finite", n)
		}
		for pos := 0; pos < n; pos += max(1, n/7) {
			for _, s := range specials {
				y := append([]float32(nil), x...)
				y[pos] = s
				if AllFinite(y) {
					t.Fatalf("n=%d: %v at %d not found", n, s, pos)
				}
			}
		}
	}
}
