package data

import (
	"slices"
	"strings"
	"testing"
)

func TestReadCSVValid(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		features int
		classes  int
		values   []float32
		labels   []int32
		signed   bool
	}{
		{"plain", "1,2,0\n3,4,1\n", 2, 2, []float32{1, 2, 3, 4}, []int32{0, 1}, false},
		{"header comments blanks", "# a comment\nx, y, label\n\n1.5, -2e-3, 1\n# another\n0,0,0\n", 2, 2, []float32{1.5, -2e-3, 0, 0}, []int32{1, 0}, false},
		{"quoted cells and CRLF", "\"1\",\"2\",\"2\"\r\n3,4,0\r\n5,6,1\r\n", 2, 3, []float32{1, 2, 3, 4, 5, 6}, []int32{2, 0, 1}, false},
		{"float-written labels", "1,1.0\n2,0.0\n", 1, 2, []float32{1, 2}, []int32{1, 0}, false},
		{"signed labels", "0.5,-1\n0.25,+1\n1,1\n", 1, 2, []float32{0.5, 0.25, 1}, []int32{0, 1, 1}, true},
		{"no trailing newline", "1,0\n2,1", 1, 2, []float32{1, 2}, []int32{0, 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ReadCSV(strings.NewReader(tt.in), "t.csv")
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Validate(); err != nil {
				t.Fatal(err)
			}
			if d.Features != tt.features || d.Classes != tt.classes || d.SignedLabels != tt.signed ||
				!slices.Equal(d.Values, tt.values) || !slices.Equal(d.Labels, tt.labels) {
				t.Errorf("got features=%d classes=%d signed=%t values=%v labels=%v",
					d.Features, d.Classes, d.SignedLabels, d.Values, d.Labels)
			}
			if d.Pixels != nil {
				t.Error("CSV data set has Pixels")
			}
		})
	}
}

func TestReadCSVErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", "t.csv: no data rows"},
		{"only header and comments", "# c\na,b\n", "t.csv: no data rows"},
		{"one column", "1\n2\n", "t.csv: line 1: 1 column, want at least 2"},
		{"non-numeric cell", "1,2,0\n3,abc,1\n", "t.csv: line 2, column 2: value \"abc\" is not a number"},
		{"empty cell", "1,2,0\n3,,1\n", "line 2, column 2: empty cell"},
		{"ragged short", "1,2,0\n3,1\n", "t.csv: line 2: 2 columns, want 3 like the first row (ragged row)"},
		{"ragged long after header", "a,b,c\n1,2,0\n1,2,3,1\n", "line 3: 4 columns, want 3"},
		{"NaN", "1,0\nNaN,1\n", "line 2, column 1: value \"NaN\" is not finite"},
		{"Inf", "1,0\n-Inf,1\n", "value \"-Inf\" is not finite"},
		{"float32 overflow", "1,0\n1e39,1\n", "value \"1e39\" is outside the float32 range"},
		{"single class", "1,0\n2,0\n3,0\n", "t.csv: all 3 rows have the same label 0"},
		{"single signed class", "1,1\n2,1\n", "all 2 rows have the same label 1"},
		{"label not integer", "1,0\n2,0.5\n", "line 2, column 2 (label): label \"0.5\" is not an integer"},
		{"label text", "1,0\n2,yes\n", "line 2, column 2 (label): label \"yes\" is not a number"},
		{"label NaN", "1,0\n2,NaN\n", "label \"NaN\" is not a number"},
		{"label negative", "1,0\n2,-2\n", "label \"-2\" out of range"},
		{"mixed signed", "1,-1\n2,0\n3,1\n", "line 2: label 0: the file uses -1/+1 labels"},
		{"missing class", "1,1\n2,2\n", "class 0 has no rows"},
		{"bare quote", "1,0\n2,\"1\n", "t.csv: line 2"},
		{"line numbers count comments", "# c\n\n1,0\n# c\n2,x\n", "line 5, column 2 (label)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadCSV(strings.NewReader(tt.in), "t.csv")
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// FuzzCSV feeds arbitrary text to ReadCSV: it must never panic, and any data
// set it accepts must pass Validate with at least two classes.
func FuzzCSV(f *testing.F) {
	for _, s := range []string{
		"1,2,0\n3,4,1\n",
		"x,y,label\n# c\n\n1.5,-2,1\n0,0,0\n",
		"0.5,-1\n0.25,+1\n",
		"\"1\",\"2\",\"1\"\r\n3,4,0\r\n",
		"1,2,0\n3,1\n",
		"1,NaN,0\n2,3,1\n",
		"1,0\n2,0\n",
		"1,0\n2,\"1\n",
		"a\n",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		d, err := ReadCSV(strings.NewReader(in), "fuzz.csv")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.csv") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("accepted an invalid data set: %v", err)
		}
		if d.Classes < 2 || d.Rows() == 0 {
			t.Fatalf("accepted %d rows with %d classes", d.Rows(), d.Classes)
		}
	})
}
