package report

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// readCSV reads a CSV file written by writeCSV: the header must be
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

// writeCSV atomically writes a CSV file of the header cols and n rows
// (row(i) gives row i's fields and its name for errors); what names the
// file in errors ("metrics", "steps").
func writeCSV(path, what string, cols []string, n int, row func(i int) ([]string, string)) error {
	err := writeFileAtomic(path, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		if err := cw.Write(cols); err != nil {
			return err
		}
		for i := range n {
			fields, name := row(i)
			if err := cw.Write(fields); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return fmt.Errorf("report: %s: %w", what, err)
	}
	return nil
}
