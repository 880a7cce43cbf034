package data

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ReadCSV reads a numeric CSV classification data set from r; name (usually
// the path) appears in every error together with the line number.
//
// Format:
//   - comma-separated; fields may be quoted and surrounded by spaces;
//   - lines starting with '#' and blank lines are ignored;
//   - an optional header: the first row is a header when one of its cells is
//     not a number; it is then skipped;
//   - every row has the same number of cells, at least two; the last cell is
//     the class label, the others are features parsed as float32 (NaN, Inf and
//     values outside float32's range are rejected);
//   - labels are integers (written as "1" or "1.0"): either 0..K-1 with every
//     class present and K >= 2, or exactly -1/+1, which are mapped to 0/1 with
//     SignedLabels set.
func ReadCSV(r io.Reader, name string) (*Dataset, error) {
	return readCSV(r, name, true)
}

// readCSV parses as ReadCSV. With strict false it accepts label sets that
// do not cover 0..K-1 (a test set may lack a class), so long as the
// labels are non-negative integers or -1/+1; the caller then checks the labels
// against the training set.
func readCSV(r io.Reader, name string, strict bool) (*Dataset, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1 // checked below, with a better message
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true

	var (
		d        = &Dataset{Name: name}
		raw      []float64 // raw labels as read, before mapping
		rawLines []int
		cols     int
		first    = true
	)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("%s: line %d: %w", name, pe.Line, pe.Err)
			}
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		if first {
			first = false
			cols = len(rec)
			if cols < 2 {
				return nil, fmt.Errorf("%s: line %d: %d column, want at least 2 (features then the label)", name, line, cols)
			}
			if isHeader(rec) {
				continue
			}
		}
		if len(rec) != cols {
			return nil, fmt.Errorf("%s: line %d: %d columns, want %d like the first row (ragged row)", name, line, len(rec), cols)
		}
		for j, cell := range rec[:cols-1] {
			v, err := parseFeature(cell)
			if err != nil {
				return nil, fmt.Errorf("%s: line %d, column %d: %w", name, line, j+1, err)
			}
			d.Values = append(d.Values, v)
		}
		lab, err := parseLabel(rec[cols-1])
		if err != nil {
			return nil, fmt.Errorf("%s: line %d, column %d (label): %w", name, line, cols, err)
		}
		raw = append(raw, lab)
		rawLines = append(rawLines, line)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("%s: no data rows (empty file, or only comments and a header)", name)
	}
	d.Features = cols - 1
	if err := mapLabels(d, raw, rawLines, strict); err != nil {
		return nil, err
	}
	return d, nil
}

// isHeader reports whether any cell of the first row is not a number.
func isHeader(rec []string) bool {
	for _, cell := range rec {
		if _, err := strconv.ParseFloat(strings.TrimSpace(cell), 64); err != nil && !errors.Is(err, strconv.ErrRange) {
			return true
		}
	}
	return false
}

// parseFeature parses one feature cell as a finite float32.
func parseFeature(cell string) (float32, error) {
	s := strings.TrimSpace(cell)
	if s == "" {
		return 0, errors.New("empty cell")
	}
	v, err := strconv.ParseFloat(s, 32)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("value %q is outside the float32 range", s)
		}
		return 0, fmt.Errorf("value %q is not a number", s)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("value %q is not finite", s)
	}
	return float32(v), nil
}

// parseLabel parses a label cell: an integer, possibly written as a float
// with a zero fraction ("1.0", "1e0").
func parseLabel(cell string) (float64, error) {
	s := strings.TrimSpace(cell)
	if s == "" {
		return 0, errors.New("empty label")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("label %q is not a number", s)
	}
	if v != math.Trunc(v) {
		return 0, fmt.Errorf("label %q is not an integer", s)
	}
	if v < -1 || v > math.MaxInt32-1 {
		return 0, fmt.Errorf("label %q out of range (want 0..K-1 or -1/+1)", s)
	}
	return v, nil
}

// mapLabels turns raw labels into class indices, setting Classes and
// SignedLabels. lines gives each row's line number for errors.
func mapLabels(d *Dataset, raw []float64, lines []int, strict bool) error {
	name := d.Name
	signed := slices.Contains(raw, -1)
	d.Labels = make([]int32, len(raw))
	if signed {
		for i, v := range raw {
			switch v {
			case -1:
				d.Labels[i] = 0
			case 1:
				d.Labels[i] = 1
			default:
				return fmt.Errorf("%s: line %d: label %v: the file uses -1/+1 labels, so every label must be -1 or +1", name, lines[i], v)
			}
		}
		d.Classes, d.SignedLabels = 2, true
	} else {
		maxLabel := int32(0)
		for i, v := range raw {
			d.Labels[i] = int32(v)
			maxLabel = max(maxLabel, d.Labels[i])
		}
		d.Classes = int(maxLabel) + 1
	}
	counts := d.ClassCounts()
	present := 0
	for _, c := range counts {
		if c > 0 {
			present++
		}
	}
	if !strict {
		return nil
	}
	if present < 2 {
		return fmt.Errorf("%s: all %d rows have the same label %v: a classification data set needs at least two classes", name, len(raw), raw[0])
	}
	for c, n := range counts {
		if n == 0 {
			return fmt.Errorf("%s: labels must be 0..K-1 with every class present (or -1/+1), but class %d has no rows (largest label %d)", name, c, d.Classes-1)
		}
	}
	return nil
}
