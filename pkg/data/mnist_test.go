package data

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ringtrain/ringtrain/pkg/data/internal/subsetgen"
)

func TestMNIST1v2(t *testing.T) {
	train, test, err := MNIST1v2()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		d      *Dataset
		rows   int
		counts []int // digit 1 (label 0), digit 2 (label 1)
	}{
		{train, 12700, []int{6742, 5958}},
		{test, 2167, []int{1135, 1032}},
	} {
		d := tt.d
		if err := d.Validate(); err != nil {
			t.Fatal(err)
		}
		if d.Rows() != tt.rows || d.Features != 784 || d.Classes != 2 || d.Pixels == nil || d.Values != nil {
			t.Errorf("%s: rows=%d features=%d classes=%d pixels=%t, want %d rows of 784 byte pixels, 2 classes",
				d.Name, d.Rows(), d.Features, d.Classes, d.Pixels != nil, tt.rows)
		}
		if got := d.ClassCounts(); !slices.Equal(got, tt.counts) {
			t.Errorf("%s: class counts %v, want %v (digit 1 -> 0, digit 2 -> 1)", d.Name, got, tt.counts)
		}
		// The mapping, independently of the counts: a 1 is a thin stroke, a 2
		// a long one, so the average ink of class 0 must be well below class 1.
		var ink [2]float64
		for i := range d.Rows() {
			s := 0
			for _, p := range d.Pixels[i*784 : i*784+784] {
				s += int(p)
			}
			ink[d.Labels[i]] += float64(s)
		}
		c := d.ClassCounts()
		mean0, mean1 := ink[0]/float64(c[0]), ink[1]/float64(c[1])
		if !(mean0 < 0.75*mean1) {
			t.Errorf("%s: mean ink of label 0 = %.0f, label 1 = %.0f: label 0 should be the thin digit 1", d.Name, mean0, mean1)
		}
	}
}

// TestEmbeddedSubsetIsCurrent rebuilds the embedded file from the GoMNIST
// module in the module cache and compares: the content (the four IDX files)
// must match, and so must the compressed bytes.
func TestEmbeddedSubsetIsCurrent(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("skipping the rebuild of the embedded MNIST subset in -short mode")
	}
	dir, err := subsetgen.ModuleDataDir(".")
	if err != nil {
		t.Skipf("cannot locate the GoMNIST module, so cannot check the embedded subset: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, subsetgen.TrainImages)); err != nil {
		t.Skipf("GoMNIST module files missing from the module cache (%v); run `go mod download %s`", err, subsetgen.Module)
	}
	var fresh bytes.Buffer
	if err := subsetgen.Build(dir, &fresh); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gunzipAll(t, fresh.Bytes()), gunzipAll(t, []byte(mnist1v2GZ))) {
		t.Fatal("embedded mnist1v2.idx.gz is stale: its content differs from a rebuild; run `go generate ./pkg/data`")
	}
	if !bytes.Equal(fresh.Bytes(), []byte(mnist1v2GZ)) {
		t.Fatalf("embedded mnist1v2.idx.gz has the right content but different compressed bytes (%d vs %d bytes); "+
			"the Go toolchain's compress/flate output probably changed: run `go generate ./pkg/data`", len(mnist1v2GZ), fresh.Len())
	}
}

// TestMNISTEmbedded checks the embedded ten-digit set: the well-known row
// and per-digit counts, and that each digit's mean image differs from the
// others (labels stay with their images).
func TestMNISTEmbedded(t *testing.T) {
	train, test, err := MNIST()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		d      *Dataset
		rows   int
		counts []int
	}{
		{train, 60000, []int{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}},
		{test, 10000, []int{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}},
	} {
		d := tt.d
		if err := d.Validate(); err != nil {
			t.Fatal(err)
		}
		if d.Rows() != tt.rows || d.Features != 784 || d.Classes != 10 || d.Pixels == nil {
			t.Errorf("%s: rows=%d features=%d classes=%d, want %d rows of 784 byte pixels, 10 classes", d.Name, d.Rows(), d.Features, d.Classes, tt.rows)
		}
		if got := d.ClassCounts(); !slices.Equal(got, tt.counts) {
			t.Errorf("%s: class counts %v, want %v", d.Name, got, tt.counts)
		}
	}
	// Digit 1 is the thinnest stroke, digit 0 among the heaviest.
	var ink [10]float64
	for i := range test.Rows() {
		for _, p := range test.Pixels[i*784 : i*784+784] {
			ink[test.Labels[i]] += float64(p)
		}
	}
	c := test.ClassCounts()
	for k := range ink {
		ink[k] /= float64(c[k])
	}
	for k := range ink {
		if k != 1 && !(ink[1] < 0.7*ink[k]) {
			t.Errorf("mean ink of digit 1 = %.0f, of digit %d = %.0f: digit 1 should be the thinnest", ink[1], k, ink[k])
		}
	}
}

// TestEmbeddedMNISTIsCurrent compares the embedded files with the GoMNIST
// module's files in the module cache (whose bytes go.sum verifies) and with
// the pinned SHA-256 sums.
func TestEmbeddedMNISTIsCurrent(t *testing.T) {
	dir, err := subsetgen.ModuleDataDir(".")
	if err != nil {
		t.Skipf("SKIPPED: cannot locate the GoMNIST module, so cannot compare the embedded MNIST with it: %v", err)
	}
	for name, want := range mnist10SHA256 {
		emb, err := mnist10FS.ReadFile("mnist10/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(emb); hex.EncodeToString(got[:]) != want {
			t.Errorf("embedded %s: SHA-256 %x, want %s", name, got, want)
		}
		orig, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Skipf("SKIPPED: GoMNIST module files missing from the module cache (%v); run `go mod download %s`", err, subsetgen.Module)
		}
		if !bytes.Equal(orig, emb) {
			t.Errorf("embedded %s differs from %s; run `go generate ./pkg/data`", name, filepath.Join(dir, name))
		}
	}
}

func gunzipAll(t *testing.T, p []byte) []byte {
	t.Helper()
	z, err := gzip.NewReader(bytes.NewReader(p))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// writeMNISTDir writes a tiny ten-class MNIST set (28x28 images) in the
// standard file names, gzip'd or plain.
func writeMNISTDir(t *testing.T, gz bool, trainLabels, testLabels []byte) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, content []byte) {
		if gz {
			name += ".gz"
			content = gzipBytes(t, content)
		}
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(mnistTrainImages, idxImages(0x803, uint32(len(trainLabels)), 28, 28, seq(784*len(trainLabels))))
	write(mnistTrainLabels, idxLabels(0x801, uint32(len(trainLabels)), trainLabels))
	write(mnistTestImages, idxImages(0x803, uint32(len(testLabels)), 28, 28, seq(784*len(testLabels))))
	write(mnistTestLabels, idxLabels(0x801, uint32(len(testLabels)), testLabels))
	return dir
}

func TestMNISTDir(t *testing.T) {
	for _, gz := range []bool{false, true} {
		dir := writeMNISTDir(t, gz, []byte{0, 9, 3}, []byte{5, 5})
		train, test, err := MNISTDir(dir)
		if err != nil {
			t.Fatalf("gz=%t: %v", gz, err)
		}
		if train.Rows() != 3 || test.Rows() != 2 || train.Classes != 10 || !slices.Equal(train.Labels, []int32{0, 9, 3}) {
			t.Errorf("gz=%t: train %d rows, labels %v, classes %d; test %d rows", gz, train.Rows(), train.Labels, train.Classes, test.Rows())
		}
		if err := train.Validate(); err != nil {
			t.Error(err)
		}
	}
}

func TestMNISTDirErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) string
		want  string
	}{
		{"no dir", func(*testing.T) string { return "" }, "data set mnist needs --data-dir"},
		{"missing file", func(t *testing.T) string { return t.TempDir() }, "neither train-images-idx3-ubyte nor train-images-idx3-ubyte.gz"},
		{"label out of range", func(t *testing.T) string { return writeMNISTDir(t, false, []byte{1, 10}, []byte{1}) },
			"train-labels-idx1-ubyte: byte offset 9: label 10 (of image 1) out of range 0..9"},
		{"count mismatch", func(t *testing.T) string {
			dir := writeMNISTDir(t, false, []byte{1, 2}, []byte{1})
			p := filepath.Join(dir, mnistTestLabels)
			if err := os.WriteFile(p, idxLabels(0x801, 2, []byte{1, 2}), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, "t10k-labels-idx1-ubyte: byte offset 4: 2 labels, but"},
		{"wrong image size", func(t *testing.T) string {
			dir := writeMNISTDir(t, false, []byte{1}, []byte{1})
			p := filepath.Join(dir, mnistTrainImages)
			if err := os.WriteFile(p, idxImages(0x803, 1, 2, 2, seq(4)), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, "images are 2x2, want 28x28"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := MNISTDir(tt.setup(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
