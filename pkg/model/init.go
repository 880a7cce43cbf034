package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// Init is a weight initialization scheme. Biases always start at zero.
type Init int

// The initialization schemes.
const (
	// Uniform is the lecture's plain scheme: every weight drawn from U(-0.5, 0.5)
	// whatever the layer's size. It saturates wide layers; it is here to show why
	// the smarter schemes exist.
	Uniform Init = iota
	// Xavier (Glorot) uniform: U(-a, a) with a = sqrt(6/(in+out)), for
	// sigmoid and tanh layers.
	Xavier
	// He (Kaiming) normal: N(0, 2/in), for ReLU layers.
	He
)

var initNames = [...]string{"uniform", "xavier", "he"}

// String returns the name used on the command line and in model files.
func (i Init) String() string {
	if i < 0 || int(i) >= len(initNames) {
		return fmt.Sprintf("init(%d)", int(i))
	}
	return initNames[i]
}

// ParseInit maps a command-line name to an Init.
func ParseInit(s string) (Init, error) {
	norm := strings.ToLower(strings.TrimSpace(s))
	switch norm {
	case "glorot":
		norm = "xavier"
	case "kaiming":
		norm = "he"
	}
	for i, n := range initNames {
		if n == norm {
			return Init(i), nil
		}
	}
	return 0, fmt.Errorf("unknown init %q (want one of %s)", s, strings.Join(initNames[:], ", "))
}

// fill draws the weights of one [out, in] layer. Every layer gets its own
// stream (seed, layer) so that adding a layer does not change the others.
func (i Init) fill(w []float32, in, out int, seed uint64, layer int) {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15^uint64(layer)))
	switch i {
	case Uniform:
		for j := range w {
			w[j] = float32(rng.Float64() - 0.5)
		}
	case Xavier:
		a := math.Sqrt(6 / float64(in+out))
		for j := range w {
			w[j] = float32((2*rng.Float64() - 1) * a)
		}
	case He:
		std := math.Sqrt(2 / float64(in))
		for j := range w {
			w[j] = float32(rng.NormFloat64() * std)
		}
	default:
		panic(fmt.Sprintf("model: unknown init %d", int(i)))
	}
}
