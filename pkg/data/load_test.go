package data

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// csvRows returns n rows "i,i*2,label" with labels alternating 0/1, or
// -1/+1 when signed.
func csvRows(n int, signed bool) string {
	var b strings.Builder
	b.WriteString("a,b,label\n")
	for i := range n {
		l := i % 2
		if signed && l == 0 {
			l = -1
		}
		b.WriteString(strings.Join([]string{strconv.Itoa(i), strconv.Itoa(2 * i), strconv.Itoa(l)}, ",") + "\n")
	}
	return b.String()
}

func TestLoad(t *testing.T) {
	trainCSV := writeFile(t, "train.csv", csvRows(50, false))
	testCSV := writeFile(t, "test.csv", "1,2,1\n3,4,1\n")
	signedCSV := writeFile(t, "signed.csv", csvRows(10, true))
	signedTestCSV := writeFile(t, "signedtest.csv", "1,2,1\n")
	mnistDir := writeMNISTDir(t, true, []byte{1, 2, 3}, []byte{4})

	tests := []struct {
		name, spec, test string
		opt              Options
		trainRows        int
		testRows         int
		classes          int
		signed           bool
	}{
		{"gaussian default split", "gaussian", "", Options{Seed: 3}, 160, 40, 2, false},
		{"gaussian 30%", "gaussian", "", Options{Seed: 3, TestFraction: 0.3}, 140, 60, 2, false},
		{"gaussian with test csv", "gaussian", "csv:" + testCSV, Options{}, 200, 2, 2, false},
		{"mnist-1v2", "mnist-1v2", "", Options{}, 12700, 2167, 2, false},
		{"mnist dir", "mnist", "", Options{DataDir: mnistDir}, 3, 1, 10, false},
		{"mnist embedded", "mnist", "", Options{}, 60000, 10000, 10, false},
		{"csv split", "csv:" + trainCSV, "", Options{Seed: 1}, 40, 10, 2, false},
		{"csv with test", "csv:" + trainCSV, "csv:" + testCSV, Options{}, 50, 2, 2, false},
		{"signed csv", "csv:" + signedCSV, "csv:" + signedTestCSV, Options{}, 10, 1, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			train, test, err := Load(tt.spec, tt.test, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			if train.Rows() != tt.trainRows || test.Rows() != tt.testRows {
				t.Errorf("train %d, test %d rows; want %d, %d", train.Rows(), test.Rows(), tt.trainRows, tt.testRows)
			}
			for _, d := range []*Dataset{train, test} {
				if d.Classes != tt.classes || d.SignedLabels != tt.signed {
					t.Errorf("%s: classes %d signed %t, want %d, %t", d.Name, d.Classes, d.SignedLabels, tt.classes, tt.signed)
				}
			}
		})
	}

	// The seed drives the split.
	_, a, _ := Load("gaussian", "", Options{Seed: 5})
	_, b, _ := Load("gaussian", "", Options{Seed: 5})
	_, c, _ := Load("gaussian", "", Options{Seed: 6})
	if !slices.Equal(a.Values, b.Values) || slices.Equal(a.Values, c.Values) {
		t.Error("Load(gaussian) test set: want equal for equal seeds and different for different seeds")
	}
}

func TestLoadErrors(t *testing.T) {
	trainCSV := writeFile(t, "train.csv", csvRows(10, false))
	signedCSV := writeFile(t, "signed.csv", csvRows(10, true))
	threeCols := writeFile(t, "three.csv", "1,2,3,0\n4,5,6,1\n")
	badLabel := writeFile(t, "bad.csv", "1,2,0\n1,2,5\n")
	zeroLabel := writeFile(t, "zero.csv", "1,2,0\n")
	broken := writeFile(t, "broken.csv", "1,2,0\n1,x,1\n")
	tests := []struct {
		name, spec, test string
		opt              Options
		want             string
	}{
		{"unknown", "iris", "", Options{}, `unknown data set "iris", want one of gaussian, mnist-1v2, mnist, csv:PATH`},
		{"empty csv path", "csv:", "", Options{}, "missing path after csv:"},
		{"bad test spec", "gaussian", "test.csv", Options{}, `--test "test.csv": want csv:PATH`},
		{"fraction", "gaussian", "", Options{TestFraction: 1.5}, "test fraction 1.5 out of range"},
		{"negative fraction", "gaussian", "", Options{TestFraction: -0.1}, "out of range"},
		{"missing file", "csv:/nonexistent/x.csv", "", Options{}, "/nonexistent/x.csv"},
		{"csv parse error", "csv:" + broken, "", Options{}, broken + ": line 2, column 2"},
		{"test features", "csv:" + trainCSV, "csv:" + threeCols, Options{}, "3 features, but training set"},
		{"test label range", "csv:" + trainCSV, "csv:" + badLabel, Options{}, "label 5 out of range, training set"},
		{"test unsigned for signed train", "csv:" + signedCSV, "csv:" + zeroLabel, Options{}, "uses -1/+1 labels"},
		{"test signed for unsigned train", "csv:" + trainCSV, "csv:" + signedCSV, Options{}, "labels are -1/+1, but training set"},
		{"test csv missing", "gaussian", "csv:/nonexistent/t.csv", Options{}, "loading test set"},
		{"mnist-1v2 with 2-feature test", "mnist-1v2", "csv:" + zeroLabel, Options{}, "2 features, but training set mnist-1v2/train has 784"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Load(tt.spec, tt.test, tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestNames(t *testing.T) {
	for _, n := range Names() {
		if n == "csv:PATH" || n == "mnist" {
			continue // need files
		}
		if _, _, err := Load(n, "", Options{}); err != nil {
			t.Errorf("Names() lists %q but Load fails: %v", n, err)
		}
	}
}
