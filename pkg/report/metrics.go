// Package report writes what a training run leaves in its output directory:
// the per-epoch metrics table (metrics.csv), learning-curve plots (PNG or
// SVG), the run summary (summary.json), and a terminal progress bar.
//
// Every file is written atomically (temporary file in the same directory,
// fsync, rename, directory fsync), and the directory is created if missing,
// so a crash never leaves a half-written report.
package report

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
)

// EpochRecord is one row of metrics.csv.
type EpochRecord struct {
	// Epoch is the 1-based epoch number the row describes.
	Epoch int
	// Step is the cumulative number of optimizer steps at the end of the epoch.
	Step int
	// Samples is the cumulative number of samples trained on.
	Samples int64
	// TrainLoss and TrainAccuracy are measured on the training set.
	TrainLoss, TrainAccuracy float64
	// TestLoss and TestAccuracy are measured on the test set (NaN if not evaluated).
	TestLoss, TestAccuracy float64
	// ElapsedSeconds is the wall time since the start of the run.
	ElapsedSeconds float64
}

// metricsColumns are the exact header columns of metrics.csv.
func metricsColumns() []string {
	return []string{"epoch", "step", "samples", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "elapsed_seconds"}
}

// formatFloat formats v so that strconv.ParseFloat returns exactly v
// (shortest representation; NaN and ±Inf as "NaN", "+Inf", "-Inf").
func formatFloat(v float64) string {
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// WriteMetricsCSV atomically writes recs to path as CSV with the header
// epoch,step,samples,train_loss,train_accuracy,test_loss,test_accuracy,elapsed_seconds.
// Floats are written in their shortest exact form, so ReadMetricsCSV returns
// the same values.
func WriteMetricsCSV(path string, recs []EpochRecord) error {
	return writeCSV(path, "metrics", metricsColumns(), len(recs), func(i int) ([]string, string) {
		r := recs[i]
		return []string{
			strconv.Itoa(r.Epoch), strconv.Itoa(r.Step), strconv.FormatInt(r.Samples, 10),
			formatFloat(r.TrainLoss), formatFloat(r.TrainAccuracy),
			formatFloat(r.TestLoss), formatFloat(r.TestAccuracy),
			formatFloat(r.ElapsedSeconds),
		}, fmt.Sprintf("epoch %d", r.Epoch)
	})
}

// ReadMetricsCSV reads a file written by WriteMetricsCSV. The header must
// match exactly; errors name the file, line and column of the bad field.
func ReadMetricsCSV(path string) ([]EpochRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	cols := metricsColumns()
	var recs []EpochRecord
	err = readCSV(f, path, cols, func(row []string) error {
		var r EpochRecord
		if err := fields(row, cols, &r.Epoch, &r.Step, &r.Samples, &r.TrainLoss, &r.TrainAccuracy,
			&r.TestLoss, &r.TestAccuracy, &r.ElapsedSeconds); err != nil {
			return err
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// epochRecordJSON is EpochRecord with nullable floats: JSON has no NaN (a
// run without a test set has NaN test figures).
type epochRecordJSON struct {
	Epoch          int      `json:"epoch"`
	Step           int      `json:"step"`
	Samples        int64    `json:"samples"`
	TrainLoss      *float64 `json:"train_loss"`
	TrainAccuracy  *float64 `json:"train_accuracy"`
	TestLoss       *float64 `json:"test_loss"`
	TestAccuracy   *float64 `json:"test_accuracy"`
	ElapsedSeconds float64  `json:"elapsed_seconds"`
}

// MarshalJSON writes the record with NaN and infinite figures as null.
func (r EpochRecord) MarshalJSON() ([]byte, error) {
	return json.Marshal(epochRecordJSON{Epoch: r.Epoch, Step: r.Step, Samples: r.Samples,
		TrainLoss: finite(r.TrainLoss), TrainAccuracy: finite(r.TrainAccuracy), TestLoss: finite(r.TestLoss),
		TestAccuracy: finite(r.TestAccuracy), ElapsedSeconds: r.ElapsedSeconds})
}

// UnmarshalJSON reads a record written by MarshalJSON; null reads as NaN.
func (r *EpochRecord) UnmarshalJSON(b []byte) error {
	var j epochRecordJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = EpochRecord{Epoch: j.Epoch, Step: j.Step, Samples: j.Samples,
		TrainLoss: orNaN(j.TrainLoss), TrainAccuracy: orNaN(j.TrainAccuracy), TestLoss: orNaN(j.TestLoss),
		TestAccuracy: orNaN(j.TestAccuracy), ElapsedSeconds: j.ElapsedSeconds}
	return nil
}
