package coordcli

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/report"
)

// gaussianModel trains the lecture's 2-2-1 network (bias on) on the
// Gaussian set and returns its model file.
func gaussianModel(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	var stderr bytes.Buffer
	args := []string{"--single-process", "--dataset", "gaussian", "--hidden", "2", "--activation", "tanh", "--output", "sigmoid",
		"--loss", "mse", "--init", "xavier", "--lr", "0.5", "--batch", "16", "--epochs", "40", "--out", out, "--log-level", "warn"}
	if code := Coordinator(context.Background(), args, &stderr); code != 0 {
		t.Fatalf("training exit %d:\n%s", code, stderr.String())
	}
	return filepath.Join(out, "model.safetensors")
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPredictAndEval(t *testing.T) {
	mdl := gaussianModel(t)
	// Two clusters like the training data's (class 0 around (-1,-1), class
	// 1 around (1,1) in the lecture's set is not guaranteed; the test only
	// checks consistency between predict, eval and the model).
	rows := "x1,x2,label\n-1.5,-1.2,0\n1.4,1.1,1\n0.2,-0.3,0\n2,2,1\n"
	input := writeTemp(t, "rows.csv", rows)
	var stdout, stderr bytes.Buffer
	if code := Predict([]string{"--model", mdl, "--input", input}, &stdout, &stderr); code != 0 {
		t.Fatalf("predict exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 5 || lines[0] != "row,class,probability" {
		t.Fatalf("predictions:\n%s", stdout.String())
	}
	net, err := model.OpenFile(mdl)
	if err != nil {
		t.Fatal(err)
	}
	x := []float32{-1.5, -1.2, 1.4, 1.1, 0.2, -0.3, 2, 2}
	classes, out := net.Predict(x, 4)
	for i, l := range lines[1:] {
		f := strings.Split(l, ",")
		p, _ := strconv.ParseFloat(f[2], 64)
		if f[0] != strconv.Itoa(i) || f[1] != strconv.Itoa(int(classes[i])) || p < 0.5 || p > 1 {
			t.Fatalf("line %q: want row %d class %d (output %g) with a probability in [0.5, 1]", l, i, classes[i], out[i])
		}
	}
	// The same to a file.
	predFile := filepath.Join(t.TempDir(), "p.csv")
	if code := Predict([]string{"--model", mdl, "--input", input, "--output", predFile}, &stdout, &stderr); code != 0 {
		t.Fatalf("predict --output exit %d: %s", code, stderr.String())
	}
	if b, _ := os.ReadFile(predFile); !strings.HasPrefix(string(b), "row,class,probability\n0,") {
		t.Fatalf("prediction file:\n%s", b)
	}

	// eval on the same rows: the confusion matrix holds the predictions.
	jsonPath := filepath.Join(t.TempDir(), "eval.json")
	stdout.Reset()
	if code := Eval([]string{"--model", mdl, "--dataset", "csv:" + input, "--json", jsonPath}, &stdout, &stderr); code != 0 {
		t.Fatalf("eval exit %d: %s", code, stderr.String())
	}
	var rep EvalReport
	b, err := os.ReadFile(jsonPath)
	if err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("eval.json: %v\n%s", err, b)
	}
	labels := []int{0, 1, 0, 1}
	correct, total := 0, 0
	want := [][]int{{0, 0}, {0, 0}}
	for i, c := range classes {
		want[labels[i]][c]++
		if int(c) == labels[i] {
			correct++
		}
		total++
	}
	for i := range want {
		for j := range want[i] {
			if rep.Confusion[i][j] != want[i][j] {
				t.Fatalf("confusion %v, want %v", rep.Confusion, want)
			}
		}
	}
	if rep.Rows != 4 || rep.Accuracy != float64(correct)/float64(total) || len(rep.Precision) != 2 || len(rep.Recall) != 2 {
		t.Fatalf("report %+v", rep)
	}
	if !strings.Contains(stdout.String(), "confusion matrix") {
		t.Fatalf("eval text:\n%s", stdout.String())
	}
	// A named set: the Gaussian test split of seed 1.
	if code := Eval([]string{"--model", mdl, "--dataset", "gaussian", "--json", ""}, &stdout, &stderr); code != 0 {
		t.Fatalf("eval gaussian exit %d: %s", code, stderr.String())
	}
}

func TestPredictAndEvalRefuseWhatDoesNotFit(t *testing.T) {
	mdl := gaussianModel(t)
	corrupt := writeTemp(t, "bad.safetensors", "not a model")
	tests := []struct {
		name string
		run  func(stdout, stderr *bytes.Buffer) int
		code int
		want string
	}{
		{"too many columns", func(o, e *bytes.Buffer) int {
			return Predict([]string{"--model", mdl, "--input", writeTemp(t, "r.csv", "1,2,3,4\n")}, o, e)
		}, 1, "line 1 has 4 columns, the model takes 2 inputs"},
		{"a NaN", func(o, e *bytes.Buffer) int {
			return Predict([]string{"--model", mdl, "--input", writeTemp(t, "r.csv", "a,b\n1,NaN\n")}, o, e)
		}, 1, "line 2 column 2"},
		{"no rows", func(o, e *bytes.Buffer) int {
			return Predict([]string{"--model", mdl, "--input", writeTemp(t, "r.csv", "a,b\n")}, o, e)
		}, 1, "no input rows"},
		{"no input flag", func(o, e *bytes.Buffer) int { return Predict([]string{"--model", mdl}, o, e) }, 2, "--input is required"},
		{"corrupt model", func(o, e *bytes.Buffer) int {
			return Predict([]string{"--model", corrupt, "--input", writeTemp(t, "r.csv", "1,2\n")}, o, e)
		}, 1, "open model"},
		{"eval: wrong width", func(o, e *bytes.Buffer) int {
			return Eval([]string{"--model", mdl, "--dataset", "mnist-1v2", "--json", ""}, o, e)
		}, 1, "has 784 features, the model takes 2 inputs"},
		{"eval: more classes", func(o, e *bytes.Buffer) int {
			return Eval([]string{"--model", mdl, "--dataset", "csv:" + writeTemp(t, "c.csv", "1,2,0\n3,4,1\n5,6,2\n"), "--json", ""}, o, e)
		}, 1, "has 3 classes, the model tells 2 apart"},
		{"eval: corrupt model", func(o, e *bytes.Buffer) int {
			return Eval([]string{"--model", corrupt, "--dataset", "gaussian"}, o, e)
		}, 1, "open model"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := tc.run(&stdout, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d (want %d), stderr %q lacks %q", code, tc.code, stderr.String(), tc.want)
			}
		})
	}
}

func FuzzPredictCSV(f *testing.F) {
	f.Add([]byte("x1,x2\n1,2\n3,4\n"))
	f.Add([]byte("1,2,1\n-1,0.5,0\n"))
	f.Add([]byte("\"1\",2\n1e39,2\n"))
	net, err := model.New(model.Config{Inputs: 2, Hidden: []int{3}, Outputs: 1, Activation: model.Tanh, Output: model.Sigmoid, Loss: model.BCE, Bias: true, Init: model.Xavier}, 1)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		if err := predictCSV(net, bytes.NewReader(in), &out); err != nil {
			return
		}
		for i, l := range strings.Split(strings.TrimSpace(out.String()), "\n")[1:] {
			f := strings.Split(l, ",")
			if len(f) != 3 || f[0] != strconv.Itoa(i) {
				t.Fatalf("line %q", l)
			}
		}
	})
}

// TestUntilConvergence: --patience stops the run, summary.json says why and
// names the best epoch, and model.best.safetensors holds that epoch's
// parameters (eval on the test split gives back its recorded test loss).
func TestUntilConvergence(t *testing.T) {
	out := t.TempDir()
	var stderr bytes.Buffer
	args := []string{"--single-process", "--dataset", "gaussian", "--hidden", "2", "--activation", "tanh", "--output", "sigmoid",
		"--loss", "mse", "--init", "xavier", "--lr", "0.5", "--batch", "16", "--max-epochs", "300", "--patience", "5",
		"--min-delta", "1e-4", "--out", out, "--log-level", "warn"}
	if code := Coordinator(context.Background(), args, &stderr); code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	s, err := report.ReadSummary(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if s.StopReason != "patience" || s.BestEpoch == 0 || s.Epochs-s.BestEpoch != 5 || s.Epochs >= 300 {
		t.Fatalf("stop_reason %q after %d epochs, best epoch %d", s.StopReason, s.Epochs, s.BestEpoch)
	}
	recs, err := report.ReadMetricsCSV(filepath.Join(out, "metrics.csv"))
	if err != nil {
		t.Fatal(err)
	}
	want := recs[s.BestEpoch-1].TestLoss
	jsonPath := filepath.Join(t.TempDir(), "eval.json")
	var stdout bytes.Buffer
	if code := Eval([]string{"--model", filepath.Join(out, "model.best.safetensors"), "--dataset", "gaussian", "--json", jsonPath}, &stdout, &stderr); code != 0 {
		t.Fatalf("eval exit %d: %s", code, stderr.String())
	}
	var rep EvalReport
	b, _ := os.ReadFile(jsonPath)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if math.Abs(rep.Loss-want) > 1e-9*math.Abs(want) {
		t.Fatalf("the best model's test loss is %.9g, epoch %d recorded %.9g", rep.Loss, s.BestEpoch, want)
	}
}
