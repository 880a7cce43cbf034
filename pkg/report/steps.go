package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
)

// StepRecord is one row of steps.csv: one committed training step.
type StepRecord struct {
	// Step is the cumulative number of optimizer steps after this one (from 1).
	Step int
	// Epoch is the 1-based epoch the step belongs to.
	Epoch int
	// TrainLoss and TrainAccuracy are the mean loss and the accuracy over
	// the step's global batch, before its update.
	TrainLoss, TrainAccuracy float64
	// LR is the learning rate of the step's update.
	LR float64
	// SamplesPerSecond is the batch size over the step's wall time.
	SamplesPerSecond float64
	// WorldSize is the number of workers that ran the step (1 in process).
	WorldSize int
	// ComputeMS and AllreduceMS are the slowest worker's forward and
	// backward time and its all-reduce time, in milliseconds (NaN when the
	// executor does not measure them).
	ComputeMS, AllreduceMS float64
	// ElapsedSeconds is the wall time since the start of the run.
	ElapsedSeconds float64
}

// stepColumns are the exact header columns of steps.csv.
func stepColumns() []string {
	return []string{"step", "epoch", "train_loss", "train_accuracy", "lr", "samples_per_second", "world_size",
		"compute_ms", "allreduce_ms", "elapsed_seconds"}
}

// WriteStepsCSV atomically writes recs to path as CSV with the header
// step,epoch,train_loss,train_accuracy,lr,samples_per_second,world_size,compute_ms,allreduce_ms,elapsed_seconds.
// Floats are written in their shortest exact form, so ReadStepsCSV returns
// the same values.
func WriteStepsCSV(path string, recs []StepRecord) error {
	return writeCSV(path, "steps", stepColumns(), len(recs), func(i int) ([]string, string) {
		r := recs[i]
		return []string{
			strconv.Itoa(r.Step), strconv.Itoa(r.Epoch),
			formatFloat(r.TrainLoss), formatFloat(r.TrainAccuracy), formatFloat(r.LR),
			formatFloat(r.SamplesPerSecond), strconv.Itoa(r.WorldSize),
			formatFloat(r.ComputeMS), formatFloat(r.AllreduceMS), formatFloat(r.ElapsedSeconds),
		}, fmt.Sprintf("step %d", r.Step)
	})
}

// ReadStepsCSV reads a file written by WriteStepsCSV (a resumed run reads
// the rows of the steps done before its checkpoint). The header must match
// exactly; errors name the file, line and column of the bad field.
func ReadStepsCSV(path string) ([]StepRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	return readSteps(f, path)
}

func readSteps(r io.Reader, path string) ([]StepRecord, error) {
	cols := stepColumns()
	var recs []StepRecord
	err := readCSV(r, path, cols, func(row []string) error {
		var s StepRecord
		if err := fields(row, cols, &s.Step, &s.Epoch, &s.TrainLoss, &s.TrainAccuracy, &s.LR, &s.SamplesPerSecond,
			&s.WorldSize, &s.ComputeMS, &s.AllreduceMS, &s.ElapsedSeconds); err != nil {
			return err
		}
		if s.Step < 1 || s.Epoch < 1 || s.WorldSize < 0 {
			return fmt.Errorf("step %d, epoch %d, world size %d: step and epoch must be positive", s.Step, s.Epoch, s.WorldSize)
		}
		recs = append(recs, s)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// stepRecordJSON is StepRecord with nullable floats (JSON has no NaN).
type stepRecordJSON struct {
	Step             int      `json:"step"`
	Epoch            int      `json:"epoch"`
	TrainLoss        *float64 `json:"train_loss"`
	TrainAccuracy    *float64 `json:"train_accuracy"`
	LR               *float64 `json:"lr"`
	SamplesPerSecond *float64 `json:"samples_per_second"`
	WorldSize        int      `json:"world_size"`
	ComputeMS        *float64 `json:"compute_ms"`
	AllreduceMS      *float64 `json:"allreduce_ms"`
	ElapsedSeconds   *float64 `json:"elapsed_seconds"`
}

// MarshalJSON writes the record with NaN and infinite figures as null.
func (r StepRecord) MarshalJSON() ([]byte, error) {
	return json.Marshal(stepRecordJSON{Step: r.Step, Epoch: r.Epoch, TrainLoss: finite(r.TrainLoss),
		TrainAccuracy: finite(r.TrainAccuracy), LR: finite(r.LR), SamplesPerSecond: finite(r.SamplesPerSecond),
		WorldSize: r.WorldSize, ComputeMS: finite(r.ComputeMS), AllreduceMS: finite(r.AllreduceMS),
		ElapsedSeconds: finite(r.ElapsedSeconds)})
}
