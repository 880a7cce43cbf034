package data

import (
	"math"
	"math/rand/v2"
)

// gaussianStream is the second PCG word used by Gaussian.
const gaussianStream = 0x6a09_e667_f3bc_c908

// gaussianComponent is one 2-D normal distribution N(mean, cov) and how many
// samples of which class it contributes.
type gaussianComponent struct {
	class int32
	n     int
	mean  [2]float64
	cov   [3]float64 // s11, s12, s22 of the symmetric 2x2 covariance
}

// gaussianComponents defines the lecture's exercise: class 0 is one elongated,
// tilted cloud in the middle; class 1 is a mixture of two tilted clouds, one
// on either side of it (50 samples each). Every straight line leaves one of
// the outer clouds on the wrong side, so the best linear classifier reaches
// only about 75% (all of class 0 plus one outer cloud; the test computes the
// exact optimum over all lines), while a 2-2-1 tanh/sigmoid network WITH bias
// can cut out the middle band between two lines and reach well above 90%.
// Without bias it cannot: such a network satisfies y(-x) = 1 - y(x), and the
// layout is point-symmetric about the origin, so it stays at chance
// (docs/experiments.md shows it).
func gaussianComponents() []gaussianComponent {
	return []gaussianComponent{
		{class: 0, n: 100, mean: [2]float64{0, 0}, cov: [3]float64{0.35, 0.45, 1.6}},
		{class: 1, n: 50, mean: [2]float64{-2.2, -1.0}, cov: [3]float64{0.4, 0.45, 1.3}},
		{class: 1, n: 50, mean: [2]float64{2.2, 1.0}, cov: [3]float64{0.4, 0.45, 1.3}},
	}
}

// Gaussian returns the 2-D, two-class exercise data set: 200 samples, 100 of
// each class, drawn from full-covariance multivariate normals (see
// gaussianComponents) with a PCG generator seeded from seed. Class 0's rows
// come first, then class 1's.
//
// Determinism: the PCG stream of math/rand/v2 is specified; NormFloat64
// turns it into normals; the Cholesky transform below is written with explicit
// float64 conversions so the compiler may not fuse multiply-adds (which would
// round differently on FMA platforms); and the results are rounded to float32.
// The same seed therefore gives the same bytes on every run and platform.
func Gaussian(seed uint64) *Dataset {
	comps := gaussianComponents()
	total := 0
	for _, c := range comps {
		total += c.n
	}
	d := &Dataset{
		Name:     "gaussian",
		Features: 2,
		Classes:  2,
		Values:   make([]float32, 0, 2*total),
		Labels:   make([]int32, 0, total),
	}
	rng := rand.New(rand.NewPCG(seed, gaussianStream))
	for _, c := range comps {
		// Cholesky factor L = [[a, 0], [b, e]] with L L^T = cov.
		a := math.Sqrt(c.cov[0])
		b := c.cov[1] / a
		e := math.Sqrt(c.cov[2] - float64(b*b))
		for range c.n {
			z0 := rng.NormFloat64()
			z1 := rng.NormFloat64()
			x0 := c.mean[0] + float64(a*z0)
			x1 := c.mean[1] + float64(float64(b*z0)+float64(e*z1))
			d.Values = append(d.Values, float32(x0), float32(x1))
			d.Labels = append(d.Labels, c.class)
		}
	}
	return d
}
