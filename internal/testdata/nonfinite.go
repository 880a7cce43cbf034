// Package testdata makes the data sets that tests in several packages share.
package testdata

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// WriteNonFiniteCSV writes NonFiniteCSV into a file in t's temporary folder
// and returns its path.
func WriteNonFiniteCSV(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nonfinite.csv")
	if err := os.WriteFile(path, []byte(NonFiniteCSV()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// NonFiniteCSV returns a seeded CSV of 400 rows: two features drawn around
// (-1,-1) for class 0 and (+1,+1) for class 1, the label last, and 6 rows,
// spread over the file, whose first feature is 3e38. 3e38 is a valid
// float32, so the CSV loads, but the forward pass of a batch holding such a
// row overflows, and with --on-nonfinite skip that batch is skipped (with
// batch 32 over 3 epochs: 10 of the run's 30 batches, in epochs 1 and 2).
// Those rows are labelled 1, the class the network comes to predict for a
// large first feature: a batch whose forward pass stays finite then gets no
// gradient from the row. With label 0 such a batch would get a gradient of
// order 1e38, the parameters would blow up, every later batch would be
// skipped and a comparison of runs would mean nothing.
func NonFiniteCSV() string {
	rng := rand.New(rand.NewPCG(1, 11))
	var b strings.Builder
	b.WriteString("x1,x2,label\n")
	for i := range 400 {
		label := i % 2
		c := float64(2*label - 1)
		x1 := float32(c + 0.8*rng.NormFloat64())
		x2 := float32(c + 0.8*rng.NormFloat64())
		if i%67 == 33 { // rows 33, 100, 167, 234, 301, 368
			x1, label = 3e38, 1
		}
		fmt.Fprintf(&b, "%s,%s,%d\n", strconv.FormatFloat(float64(x1), 'g', -1, 32), strconv.FormatFloat(float64(x2), 'g', -1, 32), label)
	}
	return b.String()
}
