package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fiveEpochs is a made-up but plausible learning curve.
func fiveEpochs() []EpochRecord {
	return []EpochRecord{
		{Epoch: 1, Step: 199, Samples: 12700, TrainLoss: 0.21, TrainAccuracy: 0.93, TestLoss: 0.09, TestAccuracy: 0.972, ElapsedSeconds: 2.5},
		{Epoch: 2, Step: 398, Samples: 25400, TrainLoss: 0.062, TrainAccuracy: 0.981, TestLoss: 0.051, TestAccuracy: 0.985, ElapsedSeconds: 5.1},
		{Epoch: 3, Step: 597, Samples: 38100, TrainLoss: 0.038, TrainAccuracy: 0.989, TestLoss: 0.041, TestAccuracy: 0.9885, ElapsedSeconds: 7.6},
		{Epoch: 4, Step: 796, Samples: 50800, TrainLoss: 0.027, TrainAccuracy: 0.9925, TestLoss: 0.037, TestAccuracy: 0.9903, ElapsedSeconds: 10.2},
		{Epoch: 5, Step: 995, Samples: 63500, TrainLoss: 0.019, TrainAccuracy: 0.9951, TestLoss: 0.036, TestAccuracy: 0.9908, ElapsedSeconds: 12.7},
	}
}

// onlyFiles fails the test unless dir holds exactly the named files (no
// temporary files left behind).
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
}

// sameFloat reports equality with NaN equal to NaN.
func sameFloat(a, b float64) bool {
	return a == b || (math.IsNaN(a) && math.IsNaN(b))
}

func TestMetricsCSVRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out", "run1") // created on demand
	path := filepath.Join(dir, "metrics.csv")
	recs := fiveEpochs()
	recs = append(recs, EpochRecord{Epoch: 6, Step: 1194, Samples: 1 << 40, TrainLoss: math.Inf(1),
		TrainAccuracy: 0.1 + 0.2, TestLoss: math.NaN(), TestAccuracy: math.NaN(), ElapsedSeconds: 1e-9})
	if err := WriteMetricsCSV(path, recs); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	if want := "epoch,step,samples,train_loss,train_accuracy,test_loss,test_accuracy,elapsed_seconds"; lines[0] != want {
		t.Fatalf("header %q, want %q", lines[0], want)
	}
	if want := "1,199,12700,0.21,0.93,0.09,0.972,2.5"; lines[1] != want {
		t.Fatalf("first row %q, want %q", lines[1], want)
	}
	got, err := ReadMetricsCSV(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("read %d records, want %d", len(got), len(recs))
	}
	for i, w := range recs {
		g := got[i]
		if g.Epoch != w.Epoch || g.Step != w.Step || g.Samples != w.Samples ||
			!sameFloat(g.TrainLoss, w.TrainLoss) || !sameFloat(g.TrainAccuracy, w.TrainAccuracy) ||
			!sameFloat(g.TestLoss, w.TestLoss) || !sameFloat(g.TestAccuracy, w.TestAccuracy) ||
			!sameFloat(g.ElapsedSeconds, w.ElapsedSeconds) {
			t.Fatalf("record %d: got %+v, want %+v", i, g, w)
		}
	}
	// Rewriting replaces the file whole and leaves no temporary file.
	if err := WriteMetricsCSV(path, recs[:1]); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadMetricsCSV(path); err != nil || len(got) != 1 {
		t.Fatalf("after rewrite: %d records, %v", len(got), err)
	}
	if err := WriteMetricsCSV(path, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadMetricsCSV(path); err != nil || len(got) != 0 {
		t.Fatalf("empty table: %d records, %v", len(got), err)
	}
	onlyFiles(t, dir, "metrics.csv")
}

func TestReadMetricsCSVErrors(t *testing.T) {
	header := "epoch,step,samples,train_loss,train_accuracy,test_loss,test_accuracy,elapsed_seconds\n"
	tests := []struct {
		name, content, want string
	}{
		{"empty", "", "empty file"},
		{"wrong header", strings.Replace(header, "test_loss", "val_loss", 1), `line 1: column 6 is "val_loss", want "test_loss"`},
		{"short row", header + "1,2,3\n", "wrong number of fields"},
		{"bad int", header + "1,2,3,0.1,0.2,0.3,0.4,5\nx,2,3,0.1,0.2,0.3,0.4,5\n", "line 3: column epoch"},
		{"bad samples", header + "1,2,3.5,0.1,0.2,0.3,0.4,5\n", "line 2: column samples"},
		{"bad float", header + "1,2,3,0.1,0.2,zero,0.4,5\n", "line 2: column test_loss"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "metrics.csv")
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadMetricsCSV(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := ReadMetricsCSV(filepath.Join(t.TempDir(), "missing.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: got %v, want ErrNotExist", err)
	}
}

func TestSummaryRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	path := filepath.Join(dir, "summary.json")
	tests := []Summary{
		{
			TestAccuracy: 0.9945, TestLoss: 0.0213, TrainLoss: 0.018, TrainAccuracy: 0.996,
			Epochs: 3, Steps: 597, Samples: 38100, SamplesPerSecond: 5123.5, WallSeconds: 7.44,
			WorldSize: 2, Dataset: "mnist12", Config: map[string]string{"lr": "0.1", "batch": "64"},
		},
		{TestLoss: math.NaN(), TrainLoss: math.Inf(1), Dataset: "diverged"},
	}
	for _, want := range tests {
		if err := WriteSummary(path, &want); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(raw), "{\n  \"test_accuracy\": ") {
			t.Fatalf("summary is not indented JSON in field order:\n%s", raw)
		}
		got, err := ReadSummary(path)
		if err != nil {
			t.Fatal(err)
		}
		wantBack := want
		if math.IsInf(wantBack.TrainLoss, 0) {
			wantBack.TrainLoss = math.NaN() // documented: non-finite reads back as NaN
		}
		if !sameFloat(got.TestAccuracy, wantBack.TestAccuracy) || !sameFloat(got.TestLoss, wantBack.TestLoss) ||
			!sameFloat(got.TrainLoss, wantBack.TrainLoss) || !sameFloat(got.TrainAccuracy, wantBack.TrainAccuracy) ||
			got.Epochs != want.Epochs || got.Steps != want.Steps || got.Samples != want.Samples ||
			!sameFloat(got.SamplesPerSecond, want.SamplesPerSecond) || !sameFloat(got.WallSeconds, want.WallSeconds) ||
			got.WorldSize != want.WorldSize || got.Dataset != want.Dataset || len(got.Config) != len(want.Config) {
			t.Fatalf("got %+v, want %+v", got, wantBack)
		}
		for k, v := range want.Config {
			if got.Config[k] != v {
				t.Fatalf("config %q: got %q, want %q", k, got.Config[k], v)
			}
		}
	}
	onlyFiles(t, dir, "summary.json")
	if err := WriteSummary(path, nil); err == nil {
		t.Fatal("WriteSummary(nil) succeeded")
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"epochs": "three"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSummary(bad); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Fatalf("bad summary: got %v", err)
	}
}

// syntheticSteps is a noisy falling loss over n steps of 199 per epoch.
func syntheticSteps(n int) []StepRecord {
	out := make([]StepRecord, n)
	for i := range out {
		noise := 0.08 * math.Sin(float64(i)*1.7)
		out[i] = StepRecord{Step: i + 1, Epoch: i/199 + 1, TrainLoss: 0.7*math.Exp(-float64(i)/40) + 0.05 + noise,
			TrainAccuracy: math.Min(1, 0.5+0.5*(1-math.Exp(-float64(i)/30))+noise/4), LR: 0.1,
			SamplesPerSecond: 5000, WorldSize: 2, ComputeMS: 10, AllreduceMS: 2, ElapsedSeconds: float64(i) / 80}
	}
	return out
}

// rawPixels counts pixels close to the per-step (light blue) colour.
func rawPixels(img image.Image) int {
	b, n := img.Bounds(), 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			if r > 0x80 && r < 0xc0 && g > 0xb0 && g < 0xd8 && bl > 0xd8 && bl < 0xf4 {
				n++
			}
		}
	}
	return n
}

// pixelStats counts pixels that differ from white, and pixels close to the
// train (blue) and test (orange) curve colours.
func pixelStats(img image.Image) (nonWhite, blue, orange int) {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			if r < 0xf0 || g < 0xf0 || bl < 0xf0 {
				nonWhite++
			}
			if bl > 0x90 && r < 0x60 && g > 0x50 && g < 0xa0 {
				blue++
			}
			if r > 0xb0 && g > 0x40 && g < 0x80 && bl < 0x40 {
				orange++
			}
		}
	}
	return nonWhite, blue, orange
}

func TestPlotLearningCurvePNG(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plots")
	tests := []struct {
		name       string
		recs       []EpochRecord
		steps      []StepRecord
		wantOrange bool
		wantRaw    bool // the light per-step curve is drawn
	}{
		{"five epochs", fiveEpochs(), nil, true, false},
		{"single epoch", fiveEpochs()[:1], nil, true, false},
		{"single epoch with its steps", fiveEpochs()[:1], syntheticSteps(199), true, true},
		{"five epochs with their steps", fiveEpochs(), syntheticSteps(995), true, true},
		{"no test set", func() []EpochRecord {
			r := fiveEpochs()
			for i := range r {
				r[i].TestLoss, r[i].TestAccuracy = math.NaN(), math.NaN()
			}
			return r
		}(), nil, false, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "curve"+string(rune('a'+i))+".png")
			if err := PlotLearningCurve(path, "mnist12: 784-1000-1000-1, batch 64", tc.recs, tc.steps); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			img, err := png.Decode(f)
			if err != nil {
				t.Fatalf("decode PNG: %v", err)
			}
			if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 300 || b.Dx() > 3000 || b.Dy() > 2000 {
				t.Fatalf("image is %dx%d, want a readable size", b.Dx(), b.Dy())
			}
			nonWhite, blue, orange := pixelStats(img)
			total := img.Bounds().Dx() * img.Bounds().Dy()
			if nonWhite < total/100 || nonWhite > total/2 {
				t.Fatalf("%d of %d pixels are not background: blank or flooded", nonWhite, total)
			}
			if blue < 50 {
				t.Fatalf("only %d train-coloured pixels: train curve missing", blue)
			}
			if tc.wantOrange != (orange >= 50) {
				t.Fatalf("%d test-coloured pixels, want test curve drawn: %v", orange, tc.wantOrange)
			}
			if raw := rawPixels(img); tc.wantRaw != (raw >= 200) {
				t.Fatalf("%d pixels of the per-step colour, want the per-step curve drawn: %v", raw, tc.wantRaw)
			}
		})
	}
	onlyFiles(t, dir, "curvea.png", "curveb.png", "curvec.png", "curved.png", "curvee.png")
}

func TestPlotLearningCurveSVG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "curve.SVG")
	if err := PlotLearningCurve(path, "run", fiveEpochs(), syntheticSteps(995)); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("no element found in SVG: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != "svg" {
				t.Fatalf("first element is <%s>, want <svg>", se.Name.Local)
			}
			break
		}
	}
	for _, want := range []string{"loss", "accuracy", "step", "train, per step", "train, epoch mean", "test, epoch end"} {
		if !bytes.Contains(raw, []byte(">"+want+"<")) {
			t.Errorf("SVG has no text %q", want)
		}
	}
}

func TestPlotLearningCurveErrors(t *testing.T) {
	dir := t.TempDir()
	allNaN := fiveEpochs()
	for i := range allNaN {
		allNaN[i].TrainLoss, allNaN[i].TestLoss = math.NaN(), math.NaN()
	}
	tests := []struct {
		name, file string
		recs       []EpochRecord
		want       string
	}{
		{"no records", "a.png", nil, "no epochs or steps"},
		{"bad extension", "a.gif", fiveEpochs(), `unsupported extension ".gif"`},
		{"no extension", "curve", fiveEpochs(), "unsupported extension"},
		{"no finite loss", "b.png", allNaN, "loss: no finite values"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := PlotLearningCurve(filepath.Join(dir, tc.file), "t", tc.recs, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
	onlyFiles(t, dir)
}

func TestEpochTicks(t *testing.T) {
	tests := []struct {
		min, max float64
		want     string
	}{
		{0, 2, "0,1,2"},
		{0.8, 5.2, "1,2,3,4,5"},
		{1, 30, "5,10,15,20,25,30"},
		{1, 100, "10,20,30,40,50,60,70,80,90,100"},
	}
	for _, tc := range tests {
		var labels []string
		for _, tk := range epochTicks(tc.min, tc.max) {
			labels = append(labels, tk.Label)
		}
		if got := strings.Join(labels, ","); got != tc.want {
			t.Errorf("epochTicks(%v, %v) = %s, want %s", tc.min, tc.max, got, tc.want)
		}
	}
}

// fakeClock is a manually advanced clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestProgressNonTerminalWritesNothing(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var buf bytes.Buffer
	file, err := os.Create(filepath.Join(t.TempDir(), "log.txt")) // a regular file, not a terminal
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for _, w := range []io.Writer{&buf, file} {
		p := NewProgress(w, clk.now)
		for step := 1; step <= 5; step++ {
			clk.advance(time.Second)
			p.Update(1, step, 5, int64(64*step), 0.5)
		}
		p.Done()
	}
	st, err := file.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 || st.Size() != 0 {
		t.Fatalf("non-terminal output: buffer %q, file %d bytes", buf.String(), st.Size())
	}
	if IsTerminal(&buf) || IsTerminal(file) {
		t.Fatal("IsTerminal is true for a buffer or a regular file")
	}
}

func TestProgressDrawsToTerminal(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var out bytes.Buffer
	p := NewProgressTo(&out, clk.now, true)
	type upd struct {
		after              time.Duration
		epoch, step, steps int
		samples            int64
		loss               float64
		want               string // what this update writes ("" = throttled)
	}
	first := "epoch 1 [==>                 ] 1/10  loss 0.6931"
	third := "epoch 1 [======>             ] 3/10  64 samples/s  loss 0.4000  ETA 0:07"
	last := "epoch 1 [====================] 10/10  1,728 samples/s  loss 0.1235"
	updates := []upd{
		{0, 1, 1, 10, 64, 0.69314, "\r" + first},
		{50 * time.Millisecond, 1, 2, 10, 128, 0.5, ""}, // within 100 ms: skipped
		{1950 * time.Millisecond, 1, 3, 10, 192, 0.4, "\r" + third},
		{10 * time.Millisecond, 1, 4, 10, 256, 0.35, ""}, // skipped again
		{1990 * time.Millisecond, 1, 10, 10, 64 + 6912, 0.12345, "\r" + last + strings.Repeat(" ", len(third)-len(last))},
	}
	for i, u := range updates {
		clk.advance(u.after)
		before := out.Len()
		p.Update(u.epoch, u.step, u.steps, u.samples, u.loss)
		if got := out.String()[before:]; got != u.want {
			t.Fatalf("update %d wrote %q, want %q", i, got, u.want)
		}
	}
	before := out.Len()
	p.Done()
	if got, want := out.String()[before:], "\r"+strings.Repeat(" ", len(last))+"\r"; got != want {
		t.Fatalf("Done wrote %q, want %q", got, want)
	}
	// A second Done has nothing to clear; the next epoch draws at once.
	before = out.Len()
	p.Done()
	clk.advance(time.Millisecond)
	p.Update(2, 1, 10, 64*11, 0.1)
	if got := out.String()[before:]; !strings.HasPrefix(got, "\repoch 2 [==>") {
		t.Fatalf("after Done wrote %q, want a fresh epoch 2 line", got)
	}
}

func TestFormatHelpers(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {-1234567, "-1,234,567"}} {
		if got := groupThousands(tc.n); got != tc.want {
			t.Errorf("groupThousands(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{0, "0:00"}, {59499 * time.Millisecond, "0:59"}, {61 * time.Second, "1:01"}, {3723 * time.Second, "1:02:03"}} {
		if got := formatETA(tc.d); got != tc.want {
			t.Errorf("formatETA(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
