package coordcli

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/ringtrain/ringtrain/pkg/atomicfile"
	"github.com/ringtrain/ringtrain/pkg/cli"
	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/engine"
	"github.com/ringtrain/ringtrain/pkg/model"
)

// predictChunk is how many rows are predicted at once (it bounds memory).
const predictChunk = 256

// Predict runs `coordinator predict`: one output row per input row with the
// predicted class and its probability (or the output scores). It returns
// the exit code: 0, 1 for a model or input that cannot be used, 2 for bad
// flags.
func Predict(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("coordinator predict", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modelPath := fs.String("model", "out/model.safetensors", "model file written by a training run")
	input := fs.String("input", "", "CSV of input rows: one column per model input, optionally a last label column and a header line")
	output := fs.String("output", "", "CSV file for the predictions (default: standard output)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: coordinator predict --model FILE --input rows.csv [--output predictions.csv]\n\n")
		fs.PrintDefaults()
	}
	if code, ok := cli.ParseArgs(fs, args, stderr); !ok {
		return code
	}
	if *input == "" {
		fmt.Fprintln(stderr, "coordinator predict: --input is required")
		return 2
	}
	net, err := model.OpenFile(*modelPath)
	if err != nil {
		fmt.Fprintf(stderr, "coordinator predict: %v\n", err)
		return 1
	}
	in, err := os.Open(*input)
	if err != nil {
		fmt.Fprintf(stderr, "coordinator predict: --input: %v\n", err)
		return 1
	}
	defer in.Close()
	var out strings.Builder
	if err := predictCSV(net, in, &out); err != nil {
		fmt.Fprintf(stderr, "coordinator predict: %s: %v\n", *input, err)
		return 1
	}
	if *output == "" {
		_, _ = io.WriteString(stdout, out.String())
		return 0
	}
	if err := writeFile(*output, []byte(out.String())); err != nil {
		fmt.Fprintf(stderr, "coordinator predict: --output: %v\n", err)
		return 1
	}
	return 0
}

// predictCSV reads input rows from r and writes "row,class,probability"
// (a sigmoid or softmax output) or "row,class,score_0,..." (any other
// output) lines to w. Every row must have as many numeric columns as the
// model has inputs, or one more (a label, ignored); a first line that is
// not numeric is a header.
func predictCSV(net *model.Network, r io.Reader, w io.Writer) error {
	cfg := net.Config
	probs := cfg.Output == model.Sigmoid || cfg.Output == model.Softmax
	bw := bufio.NewWriter(w)
	if probs {
		fmt.Fprintln(bw, "row,class,probability")
	} else {
		cols := make([]string, cfg.Outputs)
		for j := range cols {
			cols[j] = fmt.Sprintf("score_%d", j)
		}
		fmt.Fprintf(bw, "row,class,%s\n", strings.Join(cols, ","))
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	x := make([]float32, 0, predictChunk*cfg.Inputs)
	rows, line := 0, 0
	flush := func() {
		n := len(x) / cfg.Inputs
		if n == 0 {
			return
		}
		classes, out := net.Predict(x, n)
		k := cfg.Outputs
		for i := range n {
			o := out[i*k : (i+1)*k]
			row := rows - n + i
			if probs {
				p := o[0]
				if k == 1 && classes[i] == 0 {
					p = 1 - o[0]
				} else if k > 1 {
					p = o[classes[i]]
				}
				fmt.Fprintf(bw, "%d,%d,%s\n", row, classes[i], strconv.FormatFloat(float64(p), 'g', 6, 32))
				continue
			}
			s := make([]string, k)
			for j, v := range o {
				s[j] = strconv.FormatFloat(float64(v), 'g', 6, 32)
			}
			fmt.Fprintf(bw, "%d,%d,%s\n", row, classes[i], strings.Join(s, ","))
		}
		x = x[:0]
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line++
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if line == 1 && !numeric(rec[0]) {
			continue // header
		}
		if len(rec) != cfg.Inputs && len(rec) != cfg.Inputs+1 {
			return fmt.Errorf("line %d has %d columns, the model takes %d inputs (%s): give %d, or %d with a label last",
				line, len(rec), cfg.Inputs, cfg, cfg.Inputs, cfg.Inputs+1)
		}
		for j, cell := range rec[:cfg.Inputs] {
			v, err := strconv.ParseFloat(strings.TrimSpace(cell), 32)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("line %d column %d: %q is not a finite number", line, j+1, cell)
			}
			x = append(x, float32(v))
		}
		rows++
		if len(x) == cap(x) {
			flush()
		}
	}
	flush()
	if rows == 0 {
		return errors.New("no input rows")
	}
	return bw.Flush()
}

// writeFile writes b to path atomically.
func writeFile(path string, b []byte) error {
	return atomicfile.Write(path, func(w io.Writer) error { _, err := w.Write(b); return err })
}

func numeric(cell string) bool {
	_, err := strconv.ParseFloat(strings.TrimSpace(cell), 64)
	return err == nil
}

// EvalReport is what `coordinator eval` writes to eval.json.
type EvalReport struct {
	Model    string  `json:"model"`
	Dataset  string  `json:"dataset"`
	Rows     int     `json:"rows"`
	Loss     float64 `json:"loss"`
	Accuracy float64 `json:"accuracy"`
	// Confusion[i][j] counts rows of class i predicted as class j.
	Confusion [][]int   `json:"confusion"`
	Precision []float64 `json:"precision"` // per class; NaN (null) when nothing was predicted as the class
	Recall    []float64 `json:"recall"`    // per class; NaN (null) when the class has no rows
}

// Eval runs `coordinator eval`: loss, accuracy, confusion matrix and the
// per-class precision and recall of a model on a data set (a named set's
// test split, every row of csv:PATH), as text and in eval.json.
func Eval(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("coordinator eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modelPath := fs.String("model", "out/model.safetensors", "model file written by a training run")
	dataset := fs.String("dataset", "mnist-1v2", "data: "+strings.Join(data.Names(), ", ")+" (their test split), or csv:PATH (every row)")
	dataDir := fs.String("data-dir", "", "directory holding the MNIST IDX files (for --dataset mnist)")
	seed := fs.Uint64("seed", 1, "the training run's --seed (it fixes the split of sets without a test set of their own)")
	jsonOut := fs.String("json", "eval.json", "file for the JSON report (empty: none)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: coordinator eval --model FILE --dataset mnist-1v2|mnist|gaussian|csv:PATH [--json eval.json]\n\n")
		fs.PrintDefaults()
	}
	if code, ok := cli.ParseArgs(fs, args, stderr); !ok {
		return code
	}
	net, err := model.OpenFile(*modelPath)
	if err != nil {
		fmt.Fprintf(stderr, "coordinator eval: %v\n", err)
		return 1
	}
	ds, err := evalSet(*dataset, *dataDir, *seed)
	if err != nil {
		fmt.Fprintf(stderr, "coordinator eval: --dataset %s: %v\n", *dataset, err)
		return 1
	}
	rep, err := evaluate(net, ds)
	if err != nil {
		fmt.Fprintf(stderr, "coordinator eval: %v\n", err)
		return 1
	}
	rep.Model, rep.Dataset = *modelPath, *dataset
	writeEvalText(stdout, rep)
	if *jsonOut != "" {
		b, err := json.MarshalIndent(jsonSafe(rep), "", "  ")
		if err == nil {
			err = writeFile(*jsonOut, append(b, '\n'))
		}
		if err != nil {
			fmt.Fprintf(stderr, "coordinator eval: --json: %v\n", err)
			return 1
		}
	}
	return 0
}

// evalSet loads what eval runs on: every row of a CSV, or a named set's
// test split.
func evalSet(spec, dir string, seed uint64) (*data.Dataset, error) {
	if path, ok := strings.CutPrefix(spec, "csv:"); ok {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return data.ReadCSV(f, spec)
	}
	_, test, err := data.Load(spec, "", data.Options{Seed: seed, DataDir: dir})
	if err != nil {
		return nil, err
	}
	if test == nil || test.Rows() == 0 {
		return nil, errors.New("the data set has no test rows")
	}
	return test, nil
}

// evaluate checks that ds fits the model and computes the report.
func evaluate(net *model.Network, ds *data.Dataset) (*EvalReport, error) {
	cfg := net.Config
	if ds.Features != cfg.Inputs {
		return nil, fmt.Errorf("the data set %s has %d features, the model takes %d inputs (%s)", ds.Name, ds.Features, cfg.Inputs, cfg)
	}
	k := cfg.Classes()
	if ds.Classes > k {
		return nil, fmt.Errorf("the data set %s has %d classes, the model tells %d apart (%s)", ds.Name, ds.Classes, k, cfg)
	}
	var b engine.Buffers
	loss, correct, err := engine.Evaluate(net, ds, &b)
	if err != nil {
		return nil, err
	}
	rep := &EvalReport{Rows: ds.Rows(), Loss: loss / float64(ds.Rows()), Accuracy: float64(correct) / float64(ds.Rows())}
	rep.Confusion = make([][]int, k)
	for i := range rep.Confusion {
		rep.Confusion[i] = make([]int, k)
	}
	x := make([]float32, predictChunk*ds.Features)
	labels := make([]int32, predictChunk)
	idx := make([]int, 0, predictChunk)
	for start := 0; start < ds.Rows(); start += predictChunk {
		idx = idx[:0]
		for i := start; i < min(start+predictChunk, ds.Rows()); i++ {
			idx = append(idx, i)
		}
		n := len(idx)
		ds.Gather(idx, x[:n*ds.Features], labels[:n])
		classes, _ := net.Predict(x[:n*ds.Features], n)
		for i, c := range classes {
			rep.Confusion[labels[i]][c]++
		}
	}
	for c := range k {
		var predicted, actual int
		for i := range k {
			predicted += rep.Confusion[i][c]
			actual += rep.Confusion[c][i]
		}
		rep.Precision = append(rep.Precision, ratio(rep.Confusion[c][c], predicted))
		rep.Recall = append(rep.Recall, ratio(rep.Confusion[c][c], actual))
	}
	return rep, nil
}

func ratio(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// jsonSafe returns rep with NaN precisions and recalls as null.
func jsonSafe(rep *EvalReport) any {
	orNil := func(v []float64) []*float64 {
		out := make([]*float64, len(v))
		for i := range v {
			if !math.IsNaN(v[i]) {
				out[i] = &v[i]
			}
		}
		return out
	}
	return struct {
		*EvalReport
		Precision []*float64 `json:"precision"`
		Recall    []*float64 `json:"recall"`
	}{rep, orNil(rep.Precision), orNil(rep.Recall)}
}

func writeEvalText(w io.Writer, rep *EvalReport) {
	fmt.Fprintf(w, "model %s on %s: %d rows, loss %.6g, accuracy %.4f\n", rep.Model, rep.Dataset, rep.Rows, rep.Loss, rep.Accuracy)
	fmt.Fprintln(w, "confusion matrix (rows: true class, columns: predicted):")
	for i, row := range rep.Confusion {
		cells := make([]string, len(row))
		for j, v := range row {
			cells[j] = strconv.Itoa(v)
		}
		fmt.Fprintf(w, "  %d: %s\n", i, strings.Join(cells, " "))
	}
	fmt.Fprintln(w, "class  precision  recall")
	for c := range rep.Precision {
		fmt.Fprintf(w, "%5d  %9.4f  %6.4f\n", c, rep.Precision[c], rep.Recall[c])
	}
}
