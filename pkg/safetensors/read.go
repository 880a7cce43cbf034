package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"
)

// entry is one tensor as declared in the header.
type entry struct {
	name       string
	dtype      string
	elemSize   uint64
	shape      []uint64
	begin, end uint64 // data_offsets, relative to the data buffer
}

// Read reads and validates a complete safetensors file from r.
//
// maxBytes bounds the whole file (length prefix, header and data); a value
// <= 0 means no bound beyond the 100 MB header limit. Read never allocates
// more than the bytes r actually delivers (plus bounded slack), whatever the
// header claims, so a hostile file cannot make it allocate memory it does not
// contain.
//
// Everything the format defines is checked: the header length against the
// limit and maxBytes, the header is UTF-8 JSON starting with '{', no duplicate
// keys, every tensor has exactly dtype, shape and data_offsets, the dtype is
// known (and is F32 or F64, the only ones converted), shape × element size
// equals the offset span, the tensors tile the data buffer from 0 without gap
// or overlap, and the data buffer is neither truncated nor followed by
// trailing bytes. Errors name the tensor and the offset involved. NaN and
// ±Inf values are accepted; a finite F64 value outside the float32 range is
// an error.
//
// The returned tensors are sorted by name.
func Read(r io.Reader, maxBytes int64) (*File, error) {
	if maxBytes <= 0 {
		maxBytes = math.MaxInt64
	}
	var lenBuf [headerLenSize]byte
	if got, err := io.ReadFull(r, lenBuf[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("safetensors: file has %d bytes, too short for the 8-byte header length", got)
		}
		return nil, fmt.Errorf("safetensors: read header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("safetensors: header length %d at offset 0 exceeds the %d-byte limit", n, MaxHeaderSize)
	}
	if n > uint64(maxBytes)-headerLenSize || maxBytes < headerLenSize {
		return nil, fmt.Errorf("safetensors: header length %d at offset 0 runs past the end of the %d-byte file", n, maxBytes)
	}
	hdr, err := readUpTo(r, n)
	if err != nil {
		return nil, fmt.Errorf("safetensors: read header: %w", err)
	}
	if uint64(len(hdr)) < n {
		return nil, fmt.Errorf("safetensors: truncated header: length %d declared at offset 0, file ends at offset %d", n, headerLenSize+len(hdr))
	}
	if !utf8.Valid(hdr) {
		return nil, fmt.Errorf("safetensors: header (file offsets %d to %d) is not valid UTF-8", headerLenSize, headerLenSize+n)
	}
	if len(hdr) == 0 || hdr[0] != '{' {
		return nil, fmt.Errorf("safetensors: header must start with '{' at file offset %d", headerLenSize)
	}
	entries, meta, err := parseHeader(hdr)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	dataLen, err := validateLayout(entries)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	dataStart := headerLenSize + n
	if dataLen > uint64(maxBytes)-dataStart {
		return nil, fmt.Errorf("safetensors: tensors declare a %d-byte data buffer at file offset %d, past the end of the %d-byte file",
			dataLen, dataStart, maxBytes)
	}
	data, err := readUpTo(r, dataLen)
	if err != nil {
		return nil, fmt.Errorf("safetensors: read data buffer at file offset %d: %w", dataStart, err)
	}
	if got := uint64(len(data)); got < dataLen {
		for _, e := range entries {
			if e.end > got {
				return nil, fmt.Errorf("safetensors: truncated data: tensor %q needs data bytes [%d, %d) (file offset %d) but the file ends at file offset %d",
					e.name, e.begin, e.end, dataStart+e.begin, dataStart+got)
			}
		}
	}
	var one [1]byte
	switch k, err := io.ReadFull(r, one[:]); {
	case k > 0:
		return nil, fmt.Errorf("safetensors: trailing bytes after the data buffer at file offset %d, where the last tensor ends", dataStart+dataLen)
	case err != nil && !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("safetensors: read after data buffer: %w", err)
	}

	f := &File{Tensors: make([]Tensor, 0, len(entries)), Metadata: meta}
	for _, e := range entries {
		t, err := decodeTensor(e, data[e.begin:e.end], dataStart)
		if err != nil {
			return nil, fmt.Errorf("safetensors: %w", err)
		}
		f.Tensors = append(f.Tensors, t)
	}
	slices.SortFunc(f.Tensors, func(a, b Tensor) int { return cmp.Compare(a.Name, b.Name) })
	return f, nil
}

// readUpTo reads at most n bytes from r, returning fewer at end of input.
// Memory grows with the bytes actually read, never with n alone.
func readUpTo(r io.Reader, n uint64) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(int(min(n, 64<<10)))
	if n > math.MaxInt64 {
		n = math.MaxInt64
	}
	_, err := io.CopyN(&b, r, int64(n))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b.Bytes(), nil
}

// decodeTensor converts one tensor's bytes to float32.
func decodeTensor(e entry, raw []byte, dataStart uint64) (Tensor, error) {
	t := Tensor{Name: e.name, Shape: make([]int, len(e.shape))}
	for i, d := range e.shape {
		t.Shape[i] = int(d) // bounded by math.MaxInt in parseEntry
	}
	count := uint64(len(raw)) / e.elemSize
	t.Data = make([]float32, count)
	switch e.dtype {
	case "F32":
		for i := range t.Data {
			t.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case "F64":
		for i := range t.Data {
			v := math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
			t.Data[i] = float32(v)
			if math.IsInf(float64(t.Data[i]), 0) && !math.IsInf(v, 0) {
				return Tensor{}, fmt.Errorf("tensor %q: F64 element %d (file offset %d) is %g, outside the float32 range",
					e.name, i, dataStart+e.begin+8*uint64(i), v)
			}
		}
	default:
		return Tensor{}, fmt.Errorf("tensor %q: dtype %s cannot be converted", e.name, e.dtype)
	}
	return t, nil
}

// validateLayout checks each tensor's dtype and byte size and that the
// tensors tile the data buffer exactly. It sorts entries by offset and
// returns the data buffer length.
func validateLayout(entries []entry) (uint64, error) {
	for i := range entries {
		e := &entries[i]
		size, known := dtypeSize(e.dtype)
		if !known {
			return 0, fmt.Errorf("tensor %q: unknown dtype %q", e.name, e.dtype)
		}
		if size == 0 {
			return 0, fmt.Errorf("tensor %q: dtype %s is not supported (only F32 and F64 can be read)", e.name, e.dtype)
		}
		e.elemSize = size
		count := uint64(1)
		for _, d := range e.shape {
			hi, lo := bits.Mul64(count, d)
			if hi != 0 {
				return 0, fmt.Errorf("tensor %q: shape %v overflows", e.name, e.shape)
			}
			count = lo
		}
		hi, nbytes := bits.Mul64(count, size)
		if hi != 0 {
			return 0, fmt.Errorf("tensor %q: shape %v of %s overflows", e.name, e.shape, e.dtype)
		}
		if e.end < e.begin {
			return 0, fmt.Errorf("tensor %q: data_offsets [%d, %d] end before they begin", e.name, e.begin, e.end)
		}
		if e.end-e.begin != nbytes {
			return 0, fmt.Errorf("tensor %q: shape %v of %s needs %d bytes but data_offsets [%d, %d] span %d",
				e.name, e.shape, e.dtype, nbytes, e.begin, e.end, e.end-e.begin)
		}
	}
	slices.SortFunc(entries, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.begin, b.begin), cmp.Compare(a.end, b.end), cmp.Compare(a.name, b.name))
	})
	var next uint64
	for i, e := range entries {
		switch {
		case e.begin < next:
			return 0, fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap tensor %q, which ends at data offset %d",
				e.name, e.begin, e.end, entries[i-1].name, next)
		case e.begin > next:
			return 0, fmt.Errorf("tensor %q: data_offsets [%d, %d] leave data bytes [%d, %d) covered by no tensor",
				e.name, e.begin, e.end, next, e.begin)
		}
		next = e.end
	}
	return next, nil
}

// parseHeader parses the JSON header, rejecting duplicate keys at every
// level, unknown tensor fields and values of the wrong type.
func parseHeader(hdr []byte) ([]entry, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	fail := func(what string, err error) error {
		return fmt.Errorf("invalid JSON header near file offset %d: %s: %w", headerLenSize+dec.InputOffset(), what, err)
	}
	if err := expectDelim(dec, '{'); err != nil {
		return nil, nil, fail("header", err)
	}
	var (
		entries []entry
		meta    map[string]string
		seen    = make(map[string]bool)
	)
	for dec.More() {
		key, err := stringToken(dec)
		if err != nil {
			return nil, nil, fail("key", err)
		}
		if seen[key] {
			return nil, nil, fail(strconv.Quote(key), errors.New("duplicate key"))
		}
		seen[key] = true
		if key == metadataKey {
			meta, err = parseMetadata(dec)
			if err != nil {
				return nil, nil, fail(metadataKey, err)
			}
			continue
		}
		e, err := parseEntry(dec, key)
		if err != nil {
			return nil, nil, fail("tensor "+strconv.Quote(key), err)
		}
		entries = append(entries, e)
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, nil, fail("header", err)
	}
	if tok, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, nil, fail("after header object", err)
		}
		return nil, nil, fail("after header object", fmt.Errorf("unexpected %v", tok))
	}
	return entries, meta, nil
}

// parseMetadata parses the "__metadata__" value: an object of strings, or null.
func parseMetadata(dec *json.Decoder) (map[string]string, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("want an object of strings, got %v", tok)
	}
	meta := make(map[string]string)
	for dec.More() {
		k, err := stringToken(dec)
		if err != nil {
			return nil, err
		}
		if _, dup := meta[k]; dup {
			return nil, fmt.Errorf("duplicate key %q", k)
		}
		v, err := stringToken(dec)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		meta[k] = v
	}
	return meta, expectDelim(dec, '}')
}

// parseEntry parses one tensor's {"dtype", "shape", "data_offsets"} object.
func parseEntry(dec *json.Decoder, name string) (entry, error) {
	e := entry{name: name}
	if err := expectDelim(dec, '{'); err != nil {
		return e, err
	}
	var haveDtype, haveShape, haveOffsets bool
	for dec.More() {
		k, err := stringToken(dec)
		if err != nil {
			return e, err
		}
		switch k {
		case "dtype":
			if haveDtype {
				return e, errors.New(`duplicate field "dtype"`)
			}
			haveDtype = true
			if e.dtype, err = stringToken(dec); err != nil {
				return e, fmt.Errorf("dtype: %w", err)
			}
		case "shape":
			if haveShape {
				return e, errors.New(`duplicate field "shape"`)
			}
			haveShape = true
			if e.shape, err = uintArray(dec); err != nil {
				return e, fmt.Errorf("shape: %w", err)
			}
			for _, d := range e.shape {
				if d > math.MaxInt {
					return e, fmt.Errorf("shape: dimension %d is too large", d)
				}
			}
		case "data_offsets":
			if haveOffsets {
				return e, errors.New(`duplicate field "data_offsets"`)
			}
			haveOffsets = true
			offs, err := uintArray(dec)
			if err != nil {
				return e, fmt.Errorf("data_offsets: %w", err)
			}
			if len(offs) != 2 {
				return e, fmt.Errorf("data_offsets: want [begin, end], got %d numbers", len(offs))
			}
			e.begin, e.end = offs[0], offs[1]
		default:
			return e, fmt.Errorf("unknown field %q", k)
		}
	}
	switch {
	case !haveDtype:
		return e, errors.New(`missing field "dtype"`)
	case !haveShape:
		return e, errors.New(`missing field "shape"`)
	case !haveOffsets:
		return e, errors.New(`missing field "data_offsets"`)
	}
	return e, expectDelim(dec, '}')
}

// uintArray parses a JSON array of non-negative integers.
func uintArray(dec *json.Decoder) ([]uint64, error) {
	if err := expectDelim(dec, '['); err != nil {
		return nil, err
	}
	out := []uint64{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("want a non-negative integer, got %v", tok)
		}
		v, err := strconv.ParseUint(string(num), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("want a non-negative integer, got %s", num)
		}
		out = append(out, v)
	}
	return out, expectDelim(dec, ']')
}

// stringToken reads a token that must be a JSON string.
func stringToken(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("want a string, got %v", tok)
	}
	return s, nil
}

// expectDelim reads a token that must be the delimiter d.
func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		return fmt.Errorf("want %q, got %v", d, tok)
	}
	return nil
}
