package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
)

// Summary is the content of summary.json, the one-file result of a run.
type Summary struct {
	// TestAccuracy and TestLoss are the final evaluation on the test set.
	TestAccuracy float64 `json:"test_accuracy"`
	TestLoss     float64 `json:"test_loss"`
	// TrainLoss and TrainAccuracy are the final epoch's training metrics.
	TrainLoss     float64 `json:"train_loss"`
	TrainAccuracy float64 `json:"train_accuracy"`
	// Epochs, Steps and Samples count the training done.
	Epochs  int   `json:"epochs"`
	Steps   int   `json:"steps"`
	Samples int64 `json:"samples"`
	// SamplesPerSecond is Samples divided by the training wall time.
	SamplesPerSecond float64 `json:"samples_per_second"`
	// WallSeconds is the wall time of the whole run.
	WallSeconds float64 `json:"wall_seconds"`
	// WorldSize is the number of workers (the last one, if it changed).
	WorldSize int `json:"world_size"`
	// Dataset names the data set trained on.
	Dataset string `json:"dataset"`
	// StopReason says why training stopped: epochs, steps, until-loss or
	// patience (empty for a failed or interrupted run).
	StopReason string `json:"stop_reason,omitempty"`
	// BestEpoch is the epoch with the lowest test loss, whose parameters
	// are in model.best.safetensors (0: no test set).
	BestEpoch int `json:"best_epoch,omitempty"`
	// Config holds the run's configuration as strings (flag name -> value).
	Config map[string]string `json:"config,omitempty"`
}

// summaryJSON mirrors Summary with nullable floats, because JSON has no NaN
// or infinity.
type summaryJSON struct {
	TestAccuracy     *float64          `json:"test_accuracy"`
	TestLoss         *float64          `json:"test_loss"`
	TrainLoss        *float64          `json:"train_loss"`
	TrainAccuracy    *float64          `json:"train_accuracy"`
	Epochs           int               `json:"epochs"`
	Steps            int               `json:"steps"`
	Samples          int64             `json:"samples"`
	SamplesPerSecond *float64          `json:"samples_per_second"`
	WallSeconds      *float64          `json:"wall_seconds"`
	WorldSize        int               `json:"world_size"`
	Dataset          string            `json:"dataset"`
	StopReason       string            `json:"stop_reason,omitempty"`
	BestEpoch        int               `json:"best_epoch,omitempty"`
	Config           map[string]string `json:"config,omitempty"`
}

// finite returns &v, or nil (JSON null) when v is NaN or infinite.
func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// orNaN returns *p, or NaN when p is nil (the field was null or absent).
func orNaN(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// WriteSummary atomically writes s to path as indented JSON. JSON has no
// NaN or infinity, so a non-finite float (a diverged loss, say) is written as
// null, and ReadSummary reads null back as NaN.
func WriteSummary(path string, s *Summary) error {
	if s == nil {
		return fmt.Errorf("report: summary %s: nil summary", path)
	}
	j := summaryJSON{
		TestAccuracy: finite(s.TestAccuracy), TestLoss: finite(s.TestLoss),
		TrainLoss: finite(s.TrainLoss), TrainAccuracy: finite(s.TrainAccuracy),
		Epochs: s.Epochs, Steps: s.Steps, Samples: s.Samples,
		SamplesPerSecond: finite(s.SamplesPerSecond), WallSeconds: finite(s.WallSeconds),
		WorldSize: s.WorldSize, Dataset: s.Dataset, StopReason: s.StopReason, BestEpoch: s.BestEpoch, Config: s.Config,
	}
	out, err := json.MarshalIndent(&j, "", "  ")
	if err != nil {
		return fmt.Errorf("report: summary %s: %w", path, err)
	}
	out = append(out, '\n')
	err = writeFileAtomic(path, func(w io.Writer) error {
		_, err := w.Write(out)
		return err
	})
	if err != nil {
		return fmt.Errorf("report: summary: %w", err)
	}
	return nil
}

// ReadSummary reads a file written by WriteSummary. A null or absent float
// field is NaN.
func ReadSummary(path string) (*Summary, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	var j summaryJSON
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("report: %s: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("report: %s: trailing data after the JSON object at offset %d", path, dec.InputOffset())
	}
	return &Summary{
		TestAccuracy: orNaN(j.TestAccuracy), TestLoss: orNaN(j.TestLoss),
		TrainLoss: orNaN(j.TrainLoss), TrainAccuracy: orNaN(j.TrainAccuracy),
		Epochs: j.Epochs, Steps: j.Steps, Samples: j.Samples,
		SamplesPerSecond: orNaN(j.SamplesPerSecond), WallSeconds: orNaN(j.WallSeconds),
		WorldSize: j.WorldSize, Dataset: j.Dataset, StopReason: j.StopReason, BestEpoch: j.BestEpoch, Config: j.Config,
	}, nil
}
