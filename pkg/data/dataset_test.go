package data

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"
)

// indexedValues returns a float data set whose row i holds i*10+j in feature
// j, so every copied row can be traced back to its source. Labels cycle
// through the classes with the given per-class sizes.
func indexedValues(features int, classSizes ...int) *Dataset {
	d := &Dataset{Name: "indexed", Features: features, Classes: len(classSizes), Values: []float32{}, Labels: []int32{}}
	row := 0
	for c, n := range classSizes {
		for range n {
			for j := range features {
				d.Values = append(d.Values, float32(row*10+j))
			}
			d.Labels = append(d.Labels, int32(c))
			row++
		}
	}
	return d
}

// indexedPixels returns a byte data set: pixel j of row i is (i*7+j*13)%256.
func indexedPixels(rows, features int) *Dataset {
	d := &Dataset{Name: "pixels", Features: features, Classes: 3, Pixels: make([]uint8, rows*features), Labels: make([]int32, rows)}
	for i := range rows {
		for j := range features {
			d.Pixels[i*features+j] = uint8((i*7 + j*13) % 256)
		}
		d.Labels[i] = int32(i % 3)
	}
	return d
}

func TestRowAndGather(t *testing.T) {
	for _, d := range []*Dataset{indexedPixels(50, 784), indexedValues(5, 20, 30)} {
		t.Run(d.Name, func(t *testing.T) {
			if err := d.Validate(); err != nil {
				t.Fatal(err)
			}
			idx := []int{3, 0, 49, 3, 17}
			f := d.Features
			dst := make([]float32, len(idx)*f+1) // longer than needed: allowed
			dst[len(dst)-1] = -7
			labels := make([]int32, len(idx))
			d.Gather(idx, dst, labels)
			if dst[len(dst)-1] != -7 {
				t.Error("Gather wrote past len(idx)*Features")
			}
			row := make([]float32, f)
			for k, i := range idx {
				if labels[k] != d.Labels[i] {
					t.Errorf("labels[%d] = %d, want row %d's label %d", k, labels[k], i, d.Labels[i])
				}
				for j := range f {
					var want float32
					if d.Pixels != nil {
						want = float32(d.Pixels[i*f+j]) / 255
					} else {
						want = d.Values[i*f+j]
					}
					if got := dst[k*f+j]; got != want {
						t.Fatalf("Gather: row %d (source %d) feature %d = %v, want %v", k, i, j, got, want)
					}
				}
				d.Row(i, row)
				if !slices.Equal(row, dst[k*f:k*f+f]) {
					t.Errorf("Row(%d) differs from Gather's copy", i)
				}
			}
			d.Gather(idx, dst, nil) // labels may be nil
			if allocs := testing.AllocsPerRun(20, func() { d.Gather(idx, dst, labels) }); allocs != 0 {
				t.Errorf("Gather allocates %v times per call, want 0", allocs)
			}
		})
	}
}

func TestPixelValueRange(t *testing.T) {
	if PixelValue(0) != 0 || PixelValue(255) != 1 {
		t.Errorf("PixelValue(0), PixelValue(255) = %v, %v, want 0, 1", PixelValue(0), PixelValue(255))
	}
	for b := 1; b < 256; b++ {
		if PixelValue(uint8(b)) <= PixelValue(uint8(b-1)) {
			t.Fatalf("PixelValue not increasing at %d", b)
		}
	}
}

func TestSubsetCopies(t *testing.T) {
	d := indexedPixels(10, 4)
	s := d.Subset([]int{9, 2, 2})
	if s.Rows() != 3 || !slices.Equal(s.Pixels[:4], d.Pixels[36:40]) || !slices.Equal(s.Pixels[4:8], s.Pixels[8:12]) {
		t.Fatalf("Subset rows wrong: %v", s.Pixels)
	}
	s.Pixels[0]++
	if s.Pixels[0] == d.Pixels[36] {
		t.Error("Subset shares memory with its source")
	}
	if e := d.Subset(nil); e.Rows() != 0 || e.Validate() != nil {
		t.Errorf("empty subset: rows %d, Validate %v", e.Rows(), e.Validate())
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name        string
		sizes       []int
		frac        float64
		wantTest    int
		wantByCls   []int // test rows per class
		seedsDiffer bool
	}{
		{"gaussian-like 80/20", []int{100, 100}, 0.2, 40, []int{20, 20}, true},
		{"unbalanced", []int{90, 10}, 0.2, 20, []int{18, 2}, true},
		{"remainder goes to largest fraction", []int{7, 5, 4}, 0.3, 5, []int{2, 2, 1}, true}, // 2.1, 1.5, 1.2 -> round(4.8)=5
		{"nothing", []int{5, 5}, 0, 0, []int{0, 0}, false},
		{"everything", []int{5, 5}, 1, 10, []int{5, 5}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := indexedValues(2, tt.sizes...)
			train, test := d.Split(42, tt.frac)
			if test.Rows() != tt.wantTest || train.Rows() != d.Rows()-tt.wantTest {
				t.Fatalf("train %d, test %d rows; want %d, %d", train.Rows(), test.Rows(), d.Rows()-tt.wantTest, tt.wantTest)
			}
			if got := test.ClassCounts(); !slices.Equal(got, tt.wantByCls) {
				t.Errorf("test class counts %v, want %v", got, tt.wantByCls)
			}
			// Every source row lands in exactly one part.
			seen := map[float32]int{}
			for _, part := range []*Dataset{train, test} {
				if err := part.Validate(); err != nil {
					t.Fatal(err)
				}
				for i := range part.Rows() {
					seen[part.Values[2*i]]++
				}
			}
			if len(seen) != d.Rows() {
				t.Errorf("%d distinct rows in the parts, want %d", len(seen), d.Rows())
			}
			for v, n := range seen {
				if n != 1 {
					t.Errorf("row starting %v appears %d times", v, n)
				}
			}
			// Deterministic for a seed; a different seed picks other rows.
			train2, test2 := d.Split(42, tt.frac)
			if !slices.Equal(test.Values, test2.Values) || !slices.Equal(train.Values, train2.Values) {
				t.Error("Split(42) differs between two calls")
			}
			_, test3 := d.Split(43, tt.frac)
			if differ := !slices.Equal(test.Values, test3.Values); differ != tt.seedsDiffer {
				t.Errorf("seeds 42 and 43 give different test sets: %t, want %t", differ, tt.seedsDiffer)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	good := func() *Dataset { return indexedValues(2, 2, 2) }
	tests := []struct {
		name   string
		mutate func(d *Dataset)
		want   string // substring of the error; "" = valid
	}{
		{"valid", func(*Dataset) {}, ""},
		{"no features", func(d *Dataset) { d.Features = 0 }, "Features = 0"},
		{"no classes", func(d *Dataset) { d.Classes = 0 }, "Classes = 0"},
		{"both storages", func(d *Dataset) { d.Pixels = []uint8{} }, "exactly one of Pixels and Values"},
		{"no storage", func(d *Dataset) { d.Values = nil }, "exactly one of Pixels and Values"},
		{"short values", func(d *Dataset) { d.Values = d.Values[:7] }, "len(Values) = 7"},
		{"short pixels", func(d *Dataset) { d.Values, d.Pixels = nil, make([]uint8, 3) }, "len(Pixels) = 3"},
		{"label too big", func(d *Dataset) { d.Labels[3] = 2 }, "row 3: label 2 out of range 0..1"},
		{"negative label", func(d *Dataset) { d.Labels[0] = -1 }, "row 0: label -1 out of range"},
		{"NaN", func(d *Dataset) { d.Values[5] = float32(math.NaN()) }, "row 2, feature 1: value NaN is not finite"},
		{"Inf", func(d *Dataset) { d.Values[0] = float32(math.Inf(-1)) }, "not finite"},
		{"signed with 3 classes", func(d *Dataset) { d.SignedLabels, d.Classes = true, 3 }, "SignedLabels set with 3 classes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := good()
			tt.mutate(d)
			err := d.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("no error, want one containing %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func BenchmarkGatherMNISTBatch64(b *testing.B) {
	d := indexedPixels(1000, 784)
	idx := make([]int, 64)
	for i := range idx {
		idx[i] = (i * 37) % 1000
	}
	dst := make([]float32, 64*784)
	labels := make([]int32, 64)
	b.SetBytes(64 * 784)
	for b.Loop() {
		d.Gather(idx, dst, labels)
	}
}

func TestZeroFeatures(t *testing.T) {
	pix := &Dataset{Features: 10, Classes: 2, Pixels: []uint8{
		0, 1, 0, 0, 0, 0, 0, 0, 0, 9,
		0, 0, 0, 5, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	}, Labels: []int32{0, 1, 0}}
	vals := &Dataset{Features: 3, Classes: 2, Values: []float32{0, -1, 0, 0, 0, 2.5}, Labels: []int32{0, 1}}
	for _, c := range []struct {
		name string
		ds   *Dataset
		idx  []int
		want []byte
	}{
		{"pixels, rows 0 and 1", pix, []int{0, 1}, []byte{0b1111_0101, 0b01}},
		{"pixels, row 2 only: all zero", pix, []int{2}, []byte{0xff, 0b11}},
		{"pixels, no rows", pix, nil, []byte{0xff, 0b11}},
		{"values", vals, []int{0, 1}, []byte{0b001}},
		{"a byte that turns all nonzero midway does not hide the next", &Dataset{Features: 12, Classes: 2, Pixels: []uint8{
			1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0,
			0, 0, 0, 7, 0, 0, 0, 0, 0, 4, 0, 0,
		}, Labels: []int32{0, 1}}, []int{0, 1}, []byte{0, 0b1101}},
		{"values, row 0", vals, []int{0}, []byte{0b101}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := c.ds.ZeroFeatures(c.idx, nil)
			if !bytes.Equal(got, c.want) {
				t.Fatalf("got %08b, want %08b", got, c.want)
			}
		})
	}
}
