package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/shard"
)

// The CSV must parse back (with the trainer's own reader) to the very same
// float32 values and labels, or the peers would not train on the same data.
func TestWriteCSVRoundTrip(t *testing.T) {
	for _, seed := range []uint64{1, 2, 7, 12345} {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			train, test, err := data.Load("gaussian", "", data.Options{Seed: seed, TestFraction: 0.2})
			if err != nil {
				t.Fatal(err)
			}
			for _, ds := range []*data.Dataset{train, test} {
				var buf bytes.Buffer
				if err := writeCSV(&buf, ds); err != nil {
					t.Fatal(err)
				}
				back, err := data.ReadCSV(&buf, "roundtrip.csv")
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(back.Values, ds.Values) {
					t.Errorf("values differ after the round trip")
				}
				if !slices.Equal(back.Labels, ds.Labels) {
					t.Errorf("labels differ after the round trip")
				}
			}
		})
	}
}

func TestRunWritesTrainerState(t *testing.T) {
	cases := []struct {
		name    string
		bias    bool
		shuffle string
	}{
		{"nobias-epoch", false, "epoch"},
		{"bias-once", true, "once"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"--seed", "3", "--epochs", "3", "--bias=" + strconv.FormatBool(tc.bias), "--shuffle", tc.shuffle, "--out", dir}
			if err := run(context.Background(), args, slog.New(slog.DiscardHandler)); err != nil {
				t.Fatal(err)
			}
			train, _, err := data.Load("gaussian", "", data.Options{Seed: 3, TestFraction: 0.2})
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(dir, "perm.csv"))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
			if len(lines) != 3 {
				t.Fatalf("perm.csv has %d lines, want 3", len(lines))
			}
			for e, line := range lines {
				want := e
				if tc.shuffle == "once" {
					want = 0
				}
				var got []int
				for _, f := range strings.Split(line, ",") {
					v, err := strconv.Atoi(f)
					if err != nil {
						t.Fatalf("perm.csv line %d: %v", e+1, err)
					}
					got = append(got, v)
				}
				if !slices.Equal(got, shard.Permutation(3, want, train.Rows())) {
					t.Errorf("perm.csv line %d is not the trainer's permutation of epoch %d", e+1, want)
				}
			}
			cfg := model.Config{Inputs: 2, Hidden: []int{2}, Outputs: 1, Activation: model.Tanh,
				Output: model.Sigmoid, Loss: model.MSE, Bias: tc.bias, Init: model.Xavier}
			want, err := model.New(cfg, 3)
			if err != nil {
				t.Fatal(err)
			}
			got, err := model.New(cfg, 99)
			if err != nil {
				t.Fatal(err)
			}
			if err := got.LoadFile(filepath.Join(dir, "init.safetensors")); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Params, want.Params) {
				t.Errorf("init.safetensors holds %v, want the seed's initial weights %v", got.Params, want.Params)
			}
		})
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no out", []string{"--seed", "1"}, "--out is required"},
		{"zero epochs", []string{"--epochs", "0", "--out", "x"}, "--epochs"},
		{"bad shuffle", []string{"--shuffle", "never", "--out", "x"}, "--shuffle"},
		{"bad init", []string{"--init", "zeros", "--out", "OUT"}, "--init"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := slices.Clone(tc.args)
			for i, a := range args {
				if a == "OUT" {
					args[i] = t.TempDir()
				}
			}
			err := run(context.Background(), args, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run(%v) = %v, want an error mentioning %q", args, err, tc.want)
			}
		})
	}
}
