package data

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Dataset is an in-memory classification data set, row-major.
//
// Exactly one of Pixels and Values is non-nil. Byte-valued data (MNIST) keeps
// its bytes in Pixels, and a feature's value is byte/255 (see PixelValue);
// everything else keeps float32 features in Values.
type Dataset struct {
	// Name identifies the data set in logs and errors, e.g. "mnist-1v2/train".
	Name string
	// Features is the input dimension (columns per row).
	Features int
	// Classes is the number of classes (2 for binary problems).
	Classes int
	// Pixels holds Rows*Features bytes when the data is byte-valued (MNIST);
	// a feature's value is byte/255, scaled to [0,1].
	Pixels []uint8
	// Values holds Rows*Features float32 features otherwise.
	Values []float32
	// Labels holds the class index per row, 0..Classes-1.
	Labels []int32
	// SignedLabels records that the source labelled a binary problem with
	// -1/+1: label 0 stands for -1 and label 1 for +1. Losses such as the
	// hinge loss that want signed targets map 0 -> -1 and 1 -> +1.
	SignedLabels bool
}

// PixelValue returns the feature value of a pixel byte: b/255 in float32.
// Row and Gather use exactly this conversion, so a worker that receives the
// bytes can reproduce the coordinator's values bit for bit.
func PixelValue(b uint8) float32 { return float32(b) / 255 }

// Rows returns the number of rows (samples).
func (d *Dataset) Rows() int { return len(d.Labels) }

// Row writes row i's features as float32 into dst (len >= Features).
// It panics if i is out of range or dst is too short, like a slice index.
func (d *Dataset) Row(i int, dst []float32) {
	f := d.Features
	dst = dst[:f]
	if d.Pixels != nil {
		src := d.Pixels[i*f : i*f+f]
		for j, b := range src {
			dst[j] = PixelValue(b)
		}
		return
	}
	copy(dst, d.Values[i*f:i*f+f])
}

// Gather writes the rows idx[0], idx[1], ... as a row-major len(idx) x Features
// block into dst, and their labels into labels (labels may be nil to skip
// them). It does not allocate. It panics if an index is out of range or dst
// (len >= len(idx)*Features) or labels (len >= len(idx)) is too short.
func (d *Dataset) Gather(idx []int, dst []float32, labels []int32) {
	f := d.Features
	dst = dst[:len(idx)*f]
	if labels != nil {
		labels = labels[:len(idx)]
		for k, i := range idx {
			labels[k] = d.Labels[i]
		}
	}
	if d.Pixels == nil {
		for k, i := range idx {
			copy(dst[k*f:k*f+f], d.Values[i*f:i*f+f])
		}
		return
	}
	// A 256-entry table on the stack: a lookup is cheaper than a division per
	// pixel, and filling it costs 256 divisions per call (a batch of 64 MNIST
	// rows converts 50,176 pixels).
	var table [256]float32
	for b := range table {
		table[b] = PixelValue(uint8(b))
	}
	for k, i := range idx {
		src := d.Pixels[i*f : i*f+f]
		out := dst[k*f : k*f+f]
		out = out[:len(src)]
		for j, b := range src {
			out[j] = table[b]
		}
	}
}

// Subset returns a new Dataset with the given rows, in the order given
// (copies; indices may repeat). It panics if an index is out of range.
func (d *Dataset) Subset(idx []int) *Dataset {
	f := d.Features
	s := &Dataset{
		Name:         d.Name,
		Features:     f,
		Classes:      d.Classes,
		Labels:       make([]int32, len(idx)),
		SignedLabels: d.SignedLabels,
	}
	for k, i := range idx {
		s.Labels[k] = d.Labels[i]
	}
	if d.Pixels != nil {
		s.Pixels = make([]uint8, len(idx)*f)
		for k, i := range idx {
			copy(s.Pixels[k*f:k*f+f], d.Pixels[i*f:i*f+f])
		}
		return s
	}
	s.Values = make([]float32, len(idx)*f)
	for k, i := range idx {
		copy(s.Values[k*f:k*f+f], d.Values[i*f:i*f+f])
	}
	return s
}

// splitStream is the second PCG word used by Split, so that a split and a
// generator seeded with the same number draw unrelated streams.
const splitStream = 0x5b1c_7a3e_9d24_f001

// Split returns a seeded random split with testFraction of rows in test.
//
// The split is stratified: each class contributes its share of the test rows,
// and the per-class counts are rounded with the largest-remainder method so
// the test set has exactly round(Rows*testFraction) rows. Rows keep their
// original relative order in both parts. testFraction is clamped to [0,1].
// The result depends only on the seed, the labels and testFraction.
func (d *Dataset) Split(seed uint64, testFraction float64) (train, test *Dataset) {
	n := d.Rows()
	if !(testFraction > 0) { // also catches NaN
		testFraction = 0
	}
	testFraction = min(testFraction, 1)

	byClass := make([][]int, d.Classes)
	for i, l := range d.Labels {
		byClass[l] = append(byClass[l], i)
	}
	// Largest-remainder apportionment of the test rows over the classes.
	want := int(math.Round(float64(n) * testFraction))
	quota := make([]int, d.Classes)
	type rem struct {
		class int
		frac  float64
	}
	rems := make([]rem, 0, d.Classes)
	got := 0
	for c, rows := range byClass {
		exact := float64(len(rows)) * testFraction
		quota[c] = int(math.Floor(exact))
		got += quota[c]
		rems = append(rems, rem{c, exact - float64(quota[c])})
	}
	slices.SortStableFunc(rems, func(a, b rem) int {
		switch {
		case a.frac > b.frac:
			return -1
		case a.frac < b.frac:
			return 1
		}
		return 0
	})
	for k := 0; got < want && k < len(rems); k++ {
		c := rems[k].class
		if quota[c] < len(byClass[c]) {
			quota[c]++
			got++
		}
	}

	rng := rand.New(rand.NewPCG(seed, splitStream))
	inTest := make([]bool, n)
	for c, rows := range byClass {
		rng.Shuffle(len(rows), func(a, b int) { rows[a], rows[b] = rows[b], rows[a] })
		for _, i := range rows[:quota[c]] {
			inTest[i] = true
		}
	}
	trainIdx := make([]int, 0, n-got)
	testIdx := make([]int, 0, got)
	for i, t := range inTest {
		if t {
			testIdx = append(testIdx, i)
		} else {
			trainIdx = append(trainIdx, i)
		}
	}
	train, test = d.Subset(trainIdx), d.Subset(testIdx)
	train.Name, test.Name = d.Name+"/train", d.Name+"/test"
	return train, test
}

// Validate checks internal consistency: positive Features, at least one
// class, exactly one of Pixels/Values set with Rows*Features entries, labels
// in 0..Classes-1, finite values, and SignedLabels only with two classes.
func (d *Dataset) Validate() error {
	if d == nil {
		return errors.New("data set is nil")
	}
	name := d.Name
	if name == "" {
		name = "data set"
	}
	if d.Features <= 0 {
		return fmt.Errorf("%s: Features = %d, want > 0", name, d.Features)
	}
	if d.Classes <= 0 {
		return fmt.Errorf("%s: Classes = %d, want > 0", name, d.Classes)
	}
	if d.SignedLabels && d.Classes != 2 {
		return fmt.Errorf("%s: SignedLabels set with %d classes, want 2", name, d.Classes)
	}
	if (d.Pixels == nil) == (d.Values == nil) {
		return fmt.Errorf("%s: exactly one of Pixels and Values must be non-nil (Pixels nil: %t, Values nil: %t)",
			name, d.Pixels == nil, d.Values == nil)
	}
	want := len(d.Labels) * d.Features
	if d.Pixels != nil && len(d.Pixels) != want {
		return fmt.Errorf("%s: len(Pixels) = %d, want Rows*Features = %d*%d = %d",
			name, len(d.Pixels), len(d.Labels), d.Features, want)
	}
	if d.Values != nil && len(d.Values) != want {
		return fmt.Errorf("%s: len(Values) = %d, want Rows*Features = %d*%d = %d",
			name, len(d.Values), len(d.Labels), d.Features, want)
	}
	for i, l := range d.Labels {
		if l < 0 || int(l) >= d.Classes {
			return fmt.Errorf("%s: row %d: label %d out of range 0..%d", name, i, l, d.Classes-1)
		}
	}
	for k, v := range d.Values {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%s: row %d, feature %d: value %v is not finite", name, k/d.Features, k%d.Features, v)
		}
	}
	return nil
}

// ClassCounts returns the number of rows of each class (length Classes).
// Labels outside 0..Classes-1 are not counted.
func (d *Dataset) ClassCounts() []int {
	counts := make([]int, d.Classes)
	for _, l := range d.Labels {
		if l >= 0 && int(l) < d.Classes {
			counts[l]++
		}
	}
	return counts
}

// ZeroFeatures returns a bitmap of the features that are zero in every row
// of idx (bit j of byte j/8, least significant first; (Features+7)/8
// bytes), reusing dst's storage. A feature that is zero in every row of a
// global batch has a zero first-layer weight gradient in every shard of it.
func (d *Dataset) ZeroFeatures(idx []int, dst []byte) []byte {
	f := d.Features
	n := (f + 7) / 8
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	for j := range dst {
		dst[j] = 0xff
	}
	if r := f % 8; r != 0 {
		dst[n-1] = byte(1)<<r - 1
	}
	for _, i := range idx {
		for j := 0; j < f; j++ {
			if dst[j/8] == 0 {
				j |= 7 // the rest of this byte's features are known nonzero
				continue
			}
			var nz bool
			if d.Pixels != nil {
				nz = d.Pixels[i*f+j] != 0
			} else {
				nz = d.Values[i*f+j] != 0
			}
			if nz {
				dst[j/8] &^= 1 << (j % 8)
			}
		}
	}
	return dst
}
