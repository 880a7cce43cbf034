package report

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gonum.org/v1/plot/plotter"
)

func TestStepsCSVRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "steps.csv")
	recs := syntheticSteps(5)
	recs[2].ComputeMS, recs[2].AllreduceMS = math.NaN(), math.NaN() // the in-process trainer
	if err := WriteStepsCSV(path, recs); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "step,epoch,train_loss,train_accuracy,lr,samples_per_second,world_size,compute_ms,allreduce_ms,elapsed_seconds\n"; !strings.HasPrefix(string(raw), want) {
		t.Fatalf("header: got %q", strings.SplitN(string(raw), "\n", 2)[0])
	}
	got, err := ReadStepsCSV(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("read %d rows, wrote %d", len(got), len(recs))
	}
	for i := range recs {
		if i == 2 {
			if !math.IsNaN(got[i].ComputeMS) || !math.IsNaN(got[i].AllreduceMS) {
				t.Fatalf("row 3: NaN not kept: %+v", got[i])
			}
			got[i].ComputeMS, got[i].AllreduceMS, recs[i].ComputeMS, recs[i].AllreduceMS = 0, 0, 0, 0
		}
		if !reflect.DeepEqual(got[i], recs[i]) {
			t.Fatalf("row %d: got %+v, want %+v", i+1, got[i], recs[i])
		}
	}
	onlyFiles(t, dir, "steps.csv")
}

func TestReadStepsCSVErrors(t *testing.T) {
	header := "step,epoch,train_loss,train_accuracy,lr,samples_per_second,world_size,compute_ms,allreduce_ms,elapsed_seconds\n"
	tests := []struct {
		name, text, want string
	}{
		{"empty", "", "empty file"},
		{"wrong header", strings.Replace(header, "lr", "eta", 1), `column 5 is "eta", want "lr"`},
		{"short row", header + "1,1,0.5\n", "wrong number of fields"},
		{"bad float", header + "1,1,x,0.5,0.1,10,2,1,1,0.1\n", "line 2: column train_loss"},
		{"bad int", header + "1,one,0.5,0.5,0.1,10,2,1,1,0.1\n", "line 2: column epoch"},
		{"step zero", header + "0,1,0.5,0.5,0.1,10,2,1,1,0.1\n", "must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "steps.csv")
			if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadStepsCSV(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "steps.csv") {
				t.Fatalf("got %v, want an error naming the file and containing %q", err, tc.want)
			}
		})
	}
}

func toXYs(ys []float64) plotter.XYs {
	out := make(plotter.XYs, len(ys))
	for i, y := range ys {
		out[i] = plotter.XY{X: float64(i + 1), Y: y}
	}
	return out
}

func TestSmooth(t *testing.T) {
	tests := []struct {
		n, span int
	}{{5, 0}, {10, 5}, {199, 7}, {1000, 40}, {100000, 200}}
	for _, tc := range tests {
		if got := SmoothingSpan(tc.n); got != tc.span {
			t.Errorf("SmoothingSpan(%d) = %d, want %d", tc.n, got, tc.span)
		}
	}
	// A constant stays constant from the first point (debiased), a step
	// function is followed with a lag.
	flat := Smooth(toXYs([]float64{2, 2, 2, 2}), 3)
	for i, p := range flat {
		if math.Abs(p.Y-2) > 1e-12 {
			t.Fatalf("flat point %d smoothed to %v", i, p.Y)
		}
	}
	jump := Smooth(toXYs([]float64{0, 0, 1, 1, 1, 1, 1, 1}), 3)
	if !(jump[2].Y > 0 && jump[2].Y < 1 && jump[7].Y > jump[2].Y && jump[7].Y < 1) {
		t.Fatalf("step function smoothed to %v", jump)
	}
	if Smooth(toXYs([]float64{1, 2}), 0) != nil {
		t.Fatal("span 0 should draw no smoothed curve")
	}
}

// FuzzReadStepsCSV: the reader of a file found in --out (a resumed run
// reads it) never panics, and what it accepts it writes back the same.
func FuzzReadStepsCSV(f *testing.F) {
	var buf bytes.Buffer
	path := filepath.Join(f.TempDir(), "seed.csv")
	if err := WriteStepsCSV(path, syntheticSteps(3)); err != nil {
		f.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	buf.Write(raw)
	f.Add(buf.String())
	f.Add("step,epoch\n1,2\n")
	f.Fuzz(func(t *testing.T, text string) {
		recs, err := readSteps(strings.NewReader(text), "fuzz.csv")
		if err != nil {
			return
		}
		out := filepath.Join(t.TempDir(), "steps.csv")
		if err := WriteStepsCSV(out, recs); err != nil {
			t.Fatal(err)
		}
		again, err := ReadStepsCSV(out)
		if err != nil {
			t.Fatalf("cannot read back what was accepted: %v", err)
		}
		if len(again) != len(recs) {
			t.Fatalf("read back %d rows, want %d", len(again), len(recs))
		}
	})
}
