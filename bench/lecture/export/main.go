// Command export writes, for one seed, everything a peer framework needs to
// replay a ringtrain run of the lecture's 2-2-1 network on the Gaussian data
// set step for step:
//
//   - train.csv and test.csv: the train/test split the trainer uses
//     (data.Load("gaussian", "", Options{Seed: seed, TestFraction: 0.2})),
//     columns x0,x1,label, values printed so that they parse back to the
//     same float32;
//   - init.safetensors: the initial parameters the trainer draws with the
//     same seed (model.New), tensors layers.<i>.weight [out,in] and
//     layers.<i>.bias [out];
//   - perm.csv: one line per epoch, the order in which the trainer visits the
//     training rows (shard.Permutation, epoch 0 every time for --shuffle once).
//
// Usage:
//
//	go run ./bench/lecture/export --seed 1 --epochs 100 --bias=false --out DIR
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/shard"
)

// options are the command-line flags.
type options struct {
	seed    uint64
	epochs  int
	bias    bool
	init    string
	hidden  int
	shuffle string
	out     string
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(context.Background(), os.Args[1:], log); err != nil {
		log.Error("export failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, log *slog.Logger) error {
	var o options
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.Uint64Var(&o.seed, "seed", 1, "the trainer's --seed (data, split, init and shuffling)")
	fs.IntVar(&o.epochs, "epochs", 100, "epochs of permutations to write")
	fs.BoolVar(&o.bias, "bias", false, "the trainer's --bias")
	fs.StringVar(&o.init, "init", "xavier", "the trainer's --init")
	fs.IntVar(&o.hidden, "hidden", 2, "width of the single hidden layer")
	fs.StringVar(&o.shuffle, "shuffle", "epoch", "the trainer's --shuffle: epoch or once")
	fs.StringVar(&o.out, "out", "", "output directory (created if missing)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.out == "" {
		return errors.New("--out is required")
	}
	if o.epochs < 1 {
		return fmt.Errorf("--epochs must be at least 1, got %d", o.epochs)
	}
	if o.shuffle != "epoch" && o.shuffle != "once" {
		return fmt.Errorf("--shuffle %q: want epoch or once", o.shuffle)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}

	train, test, err := data.Load("gaussian", "", data.Options{Seed: o.seed, TestFraction: 0.2})
	if err != nil {
		return fmt.Errorf("load gaussian data set: %w", err)
	}
	for _, f := range []struct {
		name string
		ds   *data.Dataset
	}{{"train.csv", train}, {"test.csv", test}} {
		if err := writeFile(filepath.Join(o.out, f.name), func(w io.Writer) error { return writeCSV(w, f.ds) }); err != nil {
			return err
		}
	}

	init, err := model.ParseInit(o.init)
	if err != nil {
		return fmt.Errorf("--init: %w", err)
	}
	// The same configuration the trainer builds for --hidden H --activation
	// tanh --output sigmoid --loss mse on a 2-feature, 2-class data set.
	cfg := model.Config{
		Inputs: train.Features, Hidden: []int{o.hidden}, Outputs: 1,
		Activation: model.Tanh, Output: model.Sigmoid, Loss: model.MSE, Bias: o.bias, Init: init,
	}
	net, err := model.New(cfg, o.seed)
	if err != nil {
		return fmt.Errorf("build network: %w", err)
	}
	if err := net.SaveFile(filepath.Join(o.out, "init.safetensors"), map[string]string{"seed": strconv.FormatUint(o.seed, 10)}); err != nil {
		return err
	}

	err = writeFile(filepath.Join(o.out, "perm.csv"), func(w io.Writer) error {
		for e := 0; e < o.epochs; e++ {
			epoch := e
			if o.shuffle == "once" {
				epoch = 0
			}
			for i, p := range shard.Permutation(o.seed, epoch, train.Rows()) {
				if i > 0 {
					if _, err := io.WriteString(w, ","); err != nil {
						return err
					}
				}
				if _, err := io.WriteString(w, strconv.Itoa(p)); err != nil {
					return err
				}
			}
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	log.Info("exported", "dir", o.out, "seed", o.seed, "train_rows", train.Rows(), "test_rows", test.Rows(),
		"network", cfg.String(), "epochs", o.epochs)
	return nil
}

// writeCSV writes ds as x0,...,label rows with a header line.
func writeCSV(w io.Writer, ds *data.Dataset) error {
	row := make([]float32, ds.Features)
	for j := 0; j < ds.Features; j++ {
		if _, err := fmt.Fprintf(w, "x%d,", j); err != nil {
			return err
		}
	}
	if _, err := io.WriteString(w, "label\n"); err != nil {
		return err
	}
	for i := 0; i < ds.Rows(); i++ {
		ds.Row(i, row)
		for _, v := range row {
			if _, err := io.WriteString(w, strconv.FormatFloat(float64(v), 'g', -1, 32)+","); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintf(w, "%d\n", ds.Labels[i]); err != nil {
			return err
		}
	}
	return nil
}

// writeFile creates path, lets fill write it through a buffer, and reports
// errors with the path.
func writeFile(path string, fill func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	bw := bufio.NewWriter(f)
	if err := fill(bw); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}
