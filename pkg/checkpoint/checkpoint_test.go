package checkpoint

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/report"
	"github.com/ringtrain/ringtrain/pkg/train"
)

func sample(steps int) *Checkpoint {
	opt, _ := model.NewOptimizer(model.OptimizerConfig{Kind: model.Adam, LR: 0.01}, 4)
	opt.Steps = int64(steps)
	for i := range opt.State {
		opt.State[i] = float32(i) / 10
	}
	return &Checkpoint{
		Position: train.Position{Epoch: 2, StepInEpoch: 3, Steps: steps, Samples: int64(steps) * 8, EpochLossSum: 1.5, EpochCorrect: 7, EpochSeen: 24,
			Records:        []report.EpochRecord{{Epoch: 1, Step: steps - 3, Samples: 80, TrainLoss: 0.5, TrainAccuracy: 0.75, TestLoss: math.NaN(), TestAccuracy: math.NaN(), ElapsedSeconds: 1}},
			ElapsedSeconds: 2.5},
		Params: []float32{1, -2, 3, float32(steps)}, Optimizer: opt, Fingerprint: "fp",
	}
}

func TestSaveLoadRoundTripAndKeep(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []int{10, 20, 30, 40} {
		if _, err := Save(dir, sample(s), 2); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := list(dir)
	if len(files) != 2 || !strings.HasSuffix(files[0], FileName(40)) || !strings.HasSuffix(files[1], FileName(30)) {
		t.Fatalf("kept %v, want the newest two", files)
	}
	c, path, err := LoadNewest(dir, sample(0).Optimizer.Config, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := sample(40)
	if !strings.HasSuffix(path, FileName(40)) || !slices.Equal(c.Params, want.Params) || !slices.Equal(c.Optimizer.State, want.Optimizer.State) ||
		c.Optimizer.Steps != 40 || c.Fingerprint != "fp" {
		t.Fatalf("loaded %+v from %s", c, path)
	}
	p := c.Position
	if p.Epoch != 2 || p.StepInEpoch != 3 || p.Steps != 40 || p.EpochCorrect != 7 || len(p.Records) != 1 || !math.IsNaN(p.Records[0].TestLoss) || p.Records[0].TrainAccuracy != 0.75 {
		t.Fatalf("position %+v", p)
	}
}

// TestDamagedCheckpointsAreSkipped: a torn newest file and a corrupt one are
// skipped with a warning and the newest valid checkpoint is loaded.
func TestDamagedCheckpointsAreSkipped(t *testing.T) {
	tests := []struct {
		name   string
		damage func(path string) error
	}{
		{"torn", func(p string) error {
			b, _ := os.ReadFile(p)
			return os.WriteFile(p, b[:len(b)-7], 0o644)
		}},
		{"flipped data byte", func(p string) error {
			b, _ := os.ReadFile(p)
			b[len(b)-2] ^= 0x40
			return os.WriteFile(p, b, 0o644)
		}},
		{"empty", func(p string) error { return os.WriteFile(p, nil, 0o644) }},
		{"not a checkpoint", func(p string) error { return os.WriteFile(p, []byte("hello"), 0o644) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			Save(dir, sample(10), 5)
			newest, _ := Save(dir, sample(20), 5)
			if err := tc.damage(newest); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			c, path, err := LoadNewest(dir, sample(0).Optimizer.Config, 4, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if c.Position.Steps != 10 || !strings.HasSuffix(path, FileName(10)) {
				t.Fatalf("loaded steps %d from %s, want the older valid checkpoint", c.Position.Steps, path)
			}
			if !strings.Contains(logs.String(), "skipping an unusable checkpoint") || !strings.Contains(logs.String(), filepath.Base(newest)) {
				t.Fatalf("no warning naming the damaged file:\n%s", logs.String())
			}
		})
	}
}

func TestNoCheckpointAndWrongShape(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := LoadNewest(dir, sample(0).Optimizer.Config, 4, nil); !errors.Is(err, ErrNone) {
		t.Fatalf("empty dir: %v", err)
	}
	if _, _, err := LoadNewest(filepath.Join(dir, "missing"), sample(0).Optimizer.Config, 4, nil); !errors.Is(err, ErrNone) {
		t.Fatalf("missing dir: %v", err)
	}
	path, _ := Save(dir, sample(5), 1)
	if _, err := Load(path, sample(0).Optimizer.Config, 5); err == nil || !strings.Contains(err.Error(), "does not hold 5 parameters") {
		t.Fatalf("wrong parameter count: %v", err)
	}
	if _, err := Load(path, model.OptimizerConfig{Kind: model.Momentum, LR: 0.1, Momentum: 0.9}, 4); err == nil || !strings.Contains(err.Error(), "state") {
		t.Fatalf("another optimizer: %v", err)
	}
}

func TestUnwritableDirectoryLeavesTheLastCheckpoint(t *testing.T) {
	dir := t.TempDir()
	good, err := Save(dir, sample(10), 3)
	if err != nil {
		t.Fatal(err)
	}
	// A file where the checkpoint directory should be makes every write fail.
	blocked := filepath.Join(t.TempDir(), "file")
	os.WriteFile(blocked, nil, 0o644)
	if _, err := Save(filepath.Join(blocked, "ckpt"), sample(20), 3); err == nil {
		t.Fatal("a checkpoint was written below a regular file")
	}
	if _, err := Load(good, sample(0).Optimizer.Config, 4); err != nil {
		t.Fatalf("the last good checkpoint was damaged: %v", err)
	}
}
