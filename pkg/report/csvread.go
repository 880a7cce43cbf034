package report

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// readCSV reads a CSV file written by this package: the header must be
// exactly cols, and every later row (with len(cols) fields) goes to parse.
// Errors name path, and the line of a row that parse refuses.
func readCSV(r io.Reader, path string, cols []string, parse func(row []string) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(cols)
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("report: %s: empty file, want header %v", path, cols)
	}
	if err != nil {
		return fmt.Errorf("report: %s: %w", path, err)
	}
	for i, c := range cols {
		if header[i] != c {
			return fmt.Errorf("report: %s line 1: column %d is %q, want %q", path, i+1, header[i], c)
		}
	}
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("report: %s: %w", path, err)
		}
		line, _ := cr.FieldPos(0)
		if err := parse(row); err != nil {
			return fmt.Errorf("report: %s line %d: %w", path, line, err)
		}
	}
}

// fields parses row's fields into dsts (*int, *int64 or *float64, nil to
// skip), naming the column of the first field that does not parse.
func fields(row, cols []string, dsts ...any) error {
	for i, d := range dsts {
		var err error
		switch d := d.(type) {
		case *int:
			*d, err = strconv.Atoi(row[i])
		case *int64:
			*d, err = strconv.ParseInt(row[i], 10, 64)
		case *float64:
			*d, err = strconv.ParseFloat(row[i], 64)
		}
		if err != nil {
			return fmt.Errorf("column %s: %w", cols[i], err)
		}
	}
	return nil
}
