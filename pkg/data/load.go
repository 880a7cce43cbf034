package data

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// Options carries the flags that influence Load.
type Options struct {
	// DataDir is a folder with the MNIST IDX files (--data-dir) to use
	// instead of the embedded copy; only the "mnist" data set reads it.
	DataDir string
	// Seed drives the Gaussian generator and the train/test split.
	Seed uint64
	// TestFraction is the share of rows split off for testing when a data
	// set has no separate test set; 0 means the default 0.2.
	TestFraction float64
}

// DefaultTestFraction is the test share Load uses when Options.TestFraction is 0.
const DefaultTestFraction = 0.2

// csvPrefix marks a CSV file in a --dataset or --test spec.
const csvPrefix = "csv:"

// Names lists the built-in data set names for --help.
func Names() []string {
	return []string{"gaussian", "mnist-1v2", "mnist", csvPrefix + "PATH"}
}

// Load resolves a --dataset spec ("gaussian", "mnist-1v2", "mnist",
// "csv:PATH") and an optional --test spec ("" or "csv:PATH") into train and
// test sets. gaussian and csv without --test are split (stratified, see
// Dataset.Split) with opt.Seed and opt.TestFraction; MNIST sets use their
// standard train/test files. With --test, the whole --dataset set is the
// training set (MNIST: its training file) and the test CSV must have the
// same number of features and labels within the training set's classes.
func Load(spec, testSpec string, opt Options) (train, test *Dataset, err error) {
	frac := opt.TestFraction
	if frac == 0 {
		frac = DefaultTestFraction
	}
	if !(frac > 0 && frac < 1) {
		return nil, nil, fmt.Errorf("test fraction %v out of range, want 0 < f < 1", opt.TestFraction)
	}
	testPath := ""
	if testSpec != "" {
		p, ok := strings.CutPrefix(testSpec, csvPrefix)
		if !ok || p == "" {
			return nil, nil, fmt.Errorf("--test %q: want csv:PATH", testSpec)
		}
		testPath = p
	}

	var whole *Dataset // a set without its own test part, to be split
	switch {
	case spec == "gaussian":
		whole = Gaussian(opt.Seed)
	case spec == "mnist-1v2":
		train, test, err = MNIST1v2()
	case spec == "mnist" && opt.DataDir == "":
		train, test, err = MNIST()
	case spec == "mnist":
		train, test, err = MNISTDir(opt.DataDir)
	case strings.HasPrefix(spec, csvPrefix):
		path := strings.TrimPrefix(spec, csvPrefix)
		if path == "" {
			return nil, nil, fmt.Errorf("--dataset %q: missing path after csv:", spec)
		}
		whole, err = readFile(path, ReadCSV)
	default:
		return nil, nil, fmt.Errorf("unknown data set %q, want one of %s", spec, strings.Join(Names(), ", "))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("loading data set %q: %w", spec, err)
	}

	if testPath != "" {
		if whole != nil {
			train = whole
		}
		test, err = loadTestCSV(testPath, train)
		if err != nil {
			return nil, nil, err
		}
	} else if whole != nil {
		train, test = whole.Split(opt.Seed, frac)
	}

	if err := train.Validate(); err != nil {
		return nil, nil, fmt.Errorf("training set: %w", err)
	}
	if err := test.Validate(); err != nil {
		return nil, nil, fmt.Errorf("test set: %w", err)
	}
	return train, test, nil
}

// loadTestCSV reads a separate test set and checks it against train.
func loadTestCSV(path string, train *Dataset) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loading test set: %w", err)
	}
	defer f.Close()
	test, err := readCSV(f, path, false)
	if err != nil {
		return nil, fmt.Errorf("loading test set: %w", err)
	}
	if test.Features != train.Features {
		return nil, fmt.Errorf("test set %s: %d features, but training set %s has %d", path, test.Features, train.Name, train.Features)
	}
	switch {
	case test.SignedLabels && !train.SignedLabels:
		return nil, fmt.Errorf("test set %s: labels are -1/+1, but training set %s uses 0..K-1", path, train.Name)
	case train.SignedLabels && !test.SignedLabels:
		// No -1 in the file: only +1 (class 1) is allowed.
		for i, l := range test.Labels {
			if l != 1 {
				return nil, fmt.Errorf("test set %s: data row %d: label %d, but training set %s uses -1/+1 labels (a test file without -1 may only hold +1)", path, i+1, l, train.Name)
			}
		}
	}
	if test.Classes > train.Classes {
		return nil, fmt.Errorf("test set %s: label %d out of range, training set %s has %d classes (0..%d)",
			path, test.Classes-1, train.Name, train.Classes, train.Classes-1)
	}
	test.Classes, test.SignedLabels = train.Classes, train.SignedLabels
	return test, nil
}

// readFile opens path and parses it with parse, naming the path in errors.
func readFile[T any](path string, parse func(io.Reader, string) (T, error)) (T, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.Close()
	return parse(f, path)
}
