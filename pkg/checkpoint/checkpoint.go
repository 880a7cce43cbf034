// Package checkpoint saves and restores the state of a run: parameters,
// optimizer state and the position in the schedule, so that a restarted
// coordinator resumes exactly where the newest valid checkpoint left off.
//
// A checkpoint is a safetensors file (tensors "params" and, when the
// optimizer has state, "optimizer.state") whose metadata holds the position,
// the optimizer's step count, the run's configuration fingerprint and CRC-32C
// checksums of both tensors. Files are written atomically (temporary file,
// fsync, rename, fsync of the directory) as ckpt-<steps>.safetensors; the
// newest few are kept. Loading tries the newest first and skips, with a
// warning, any file that does not parse or whose checksums do not match.
package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ringtrain/ringtrain/pkg/model"
	"github.com/ringtrain/ringtrain/pkg/safetensors"
	"github.com/ringtrain/ringtrain/pkg/train"
)

// metaKey is the metadata entry holding the checkpoint's description.
const metaKey = "ringtrain.checkpoint"

// Checkpoint is the state of a run at a position of its schedule.
type Checkpoint struct {
	Position    train.Position
	Params      []float32
	Optimizer   *model.Optimizer
	Fingerprint string // the run's configuration; resuming needs the same
}

// header is the JSON stored in the metadata.
type header struct {
	Version        int            `json:"version"`
	Fingerprint    string         `json:"fingerprint"`
	Position       train.Position `json:"position"` // its records encode NaN as null
	OptimizerSteps int64          `json:"optimizer_steps"`
	ParamsCRC      uint32         `json:"params_crc32c"`
	StateCRC       uint32         `json:"state_crc32c"`
}

// ErrNone is returned by LoadNewest when dir holds no valid checkpoint.
var ErrNone = errors.New("no valid checkpoint")

// FileName returns the name of the checkpoint taken after steps steps.
func FileName(steps int) string { return fmt.Sprintf("ckpt-%09d.safetensors", steps) }

// Save writes c into dir atomically and removes all but the newest keep
// checkpoints (keep < 1 keeps everything). It returns the file's path.
func Save(dir string, c *Checkpoint, keep int) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("checkpoint directory: %w", err)
	}
	h := header{
		Version: 1, Fingerprint: c.Fingerprint, Position: c.Position, OptimizerSteps: c.Optimizer.Steps,
		ParamsCRC: model.Checksum(c.Params), StateCRC: model.Checksum(c.Optimizer.State),
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return "", fmt.Errorf("encode checkpoint header: %w", err)
	}
	f := &safetensors.File{
		Metadata: map[string]string{metaKey: string(hj), "optimizer": c.Optimizer.Config.Kind.String()},
		Tensors:  []safetensors.Tensor{{Name: "params", Shape: []int{len(c.Params)}, Data: c.Params}},
	}
	if len(c.Optimizer.State) > 0 {
		f.Tensors = append(f.Tensors, safetensors.Tensor{Name: "optimizer.state", Shape: []int{len(c.Optimizer.State)}, Data: c.Optimizer.State})
	}
	path := filepath.Join(dir, FileName(c.Position.Steps))
	if err := safetensors.WriteFile(path, f); err != nil {
		return "", fmt.Errorf("write checkpoint: %w", err)
	}
	if keep > 0 {
		files, _ := list(dir)
		for _, old := range files[min(keep, len(files)):] {
			_ = os.Remove(old)
		}
	}
	return path, nil
}

// list returns the checkpoint files in dir, newest (most steps) first.
func list(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	type item struct {
		steps int
		path  string
	}
	var items []item
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "ckpt-") || !strings.HasSuffix(name, ".safetensors") || e.IsDir() {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "ckpt-"), ".safetensors"))
		if err != nil {
			continue
		}
		items = append(items, item{n, filepath.Join(dir, name)})
	}
	slices.SortFunc(items, func(a, b item) int { return b.steps - a.steps })
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.path
	}
	return out, nil
}

// Load reads and verifies one checkpoint file for an optimizer with the
// given configuration and parameter count.
func Load(path string, opt model.OptimizerConfig, nParams int) (*Checkpoint, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, err
	}
	hj, ok := f.Metadata[metaKey]
	if !ok {
		return nil, fmt.Errorf("%s: no %s metadata: not a checkpoint", path, metaKey)
	}
	var h header
	dec := json.NewDecoder(strings.NewReader(hj))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("%s: checkpoint header: %w", path, err)
	}
	if h.Version != 1 {
		return nil, fmt.Errorf("%s: checkpoint version %d, this program reads 1", path, h.Version)
	}
	p, ok := f.Lookup("params")
	if !ok || len(p.Data) != nParams {
		return nil, fmt.Errorf("%s: the checkpoint does not hold %d parameters", path, nParams)
	}
	o, err := model.NewOptimizer(opt, nParams)
	if err != nil {
		return nil, err
	}
	if want := o.StateLen(nParams); want > 0 {
		st, ok := f.Lookup("optimizer.state")
		if !ok || len(st.Data) != want {
			return nil, fmt.Errorf("%s: the checkpoint does not hold the %d values of %s's state", path, want, opt.Kind)
		}
		copy(o.State, st.Data)
	}
	if got := model.Checksum(p.Data); got != h.ParamsCRC {
		return nil, fmt.Errorf("%s: parameter checksum %08x, header says %08x", path, got, h.ParamsCRC)
	}
	if got := model.Checksum(o.State); got != h.StateCRC {
		return nil, fmt.Errorf("%s: optimizer state checksum %08x, header says %08x", path, got, h.StateCRC)
	}
	if err := model.CheckFinite("checkpoint params", p.Data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	o.Steps = h.OptimizerSteps
	return &Checkpoint{Position: h.Position, Params: p.Data, Optimizer: o, Fingerprint: h.Fingerprint}, nil
}

// LoadNewest returns the newest checkpoint in dir that loads and verifies,
// logging a warning for every newer one it skips, and its path. It returns
// ErrNone when there is none.
func LoadNewest(dir string, opt model.OptimizerConfig, nParams int, log *slog.Logger) (*Checkpoint, string, error) {
	files, err := list(dir)
	if err != nil {
		return nil, "", fmt.Errorf("list checkpoints: %w", err)
	}
	for _, path := range files {
		c, err := Load(path, opt, nParams)
		if err == nil {
			return c, path, nil
		}
		if log != nil {
			log.Warn("skipping an unusable checkpoint", "path", path, "err", err)
		}
	}
	return nil, "", ErrNone
}

// RemoveAll removes every checkpoint file in dir (and nothing else).
func RemoveAll(dir string) error {
	files, err := list(dir)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			return fmt.Errorf("remove old checkpoint: %w", err)
		}
	}
	return nil
}
