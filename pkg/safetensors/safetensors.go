// Package safetensors reads and writes the safetensors tensor file format
// (https://github.com/huggingface/safetensors).
//
// A file is an 8-byte little-endian unsigned header length N, then N bytes of
// UTF-8 JSON (an object mapping tensor names to {"dtype", "shape",
// "data_offsets"} plus an optional "__metadata__" object of strings), then the
// byte buffer holding every tensor's little-endian, row-major data. Offsets are
// relative to the start of that buffer; the tensors must tile it exactly:
// contiguous, non-overlapping, starting at 0 and ending at the end of the file.
//
// This package writes only F32 and reads F32 and F64 (F64 is converted to
// float32). Every other dtype of the format is rejected with an error naming
// the tensor and the dtype. Values are not inspected: NaN and ±Inf are passed
// through, the caller decides what they mean.
package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/ringtrain/ringtrain/pkg/atomicfile"
	"io"
	"math"
	"math/bits"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxHeaderSize is the largest JSON header accepted, the same 100 MB limit as
// the reference implementation. A larger declared header length is rejected
// before anything is allocated.
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved header key holding the free-form string map.
const metadataKey = "__metadata__"

// headerLenSize is the size of the little-endian header length prefix.
const headerLenSize = 8

// Tensor is one named float32 tensor in row-major (C) order.
type Tensor struct {
	// Name is the tensor's key in the header.
	Name string
	// Shape lists the dimensions; an empty shape is a scalar holding one value.
	Shape []int
	// Data holds prod(Shape) values in row-major order.
	Data []float32
}

// File is the content of a safetensors file.
type File struct {
	// Tensors are the file's tensors. Read returns them sorted by name; Write
	// accepts any order and writes them sorted by name.
	Tensors []Tensor
	// Metadata is the optional "__metadata__" string map (nil when absent).
	Metadata map[string]string
}

// Lookup returns the tensor with the given name.
func (f *File) Lookup(name string) (*Tensor, bool) {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i], true
		}
	}
	return nil, false
}

// dtypeSize returns the element size in bytes of the dtypes Read converts to
// float32 (F32, F64) and 0 for any other name. known reports whether the name
// is a dtype the format defines, so that a known but unsupported dtype gets a
// clearer error than a misspelt one.
func dtypeSize(name string) (size uint64, known bool) {
	switch name {
	case "F32":
		return 4, true
	case "F64":
		return 8, true
	case "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2",
		"I16", "U16", "F16", "BF16", "I32", "U32", "I64", "U64", "C64":
		return 0, true
	}
	return 0, false
}

// Write serializes f to w. The header is deterministic: compact JSON with
// "__metadata__" first (keys sorted), then the tensors sorted by name with
// contiguous offsets in that order, padded with spaces to a multiple of 8
// bytes so that the data buffer is 8-byte aligned. This matches the byte
// layout the reference implementation produces for F32 tensors.
func Write(w io.Writer, f *File) error {
	if f == nil {
		return errors.New("safetensors: write: nil file")
	}
	header, order, err := encodeHeader(f)
	if err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var lenBuf [headerLenSize]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(header)))
	if _, err := bw.Write(lenBuf[:]); err != nil {
		return fmt.Errorf("safetensors: write header length: %w", err)
	}
	if _, err := bw.Write(header); err != nil {
		return fmt.Errorf("safetensors: write header: %w", err)
	}
	chunk := make([]byte, 0, 64<<10)
	for _, t := range order {
		for i, v := range t.Data {
			chunk = binary.LittleEndian.AppendUint32(chunk, math.Float32bits(v))
			if len(chunk) == cap(chunk) || i == len(t.Data)-1 {
				if _, err := bw.Write(chunk); err != nil {
					return fmt.Errorf("safetensors: write data of tensor %q: %w", t.Name, err)
				}
				chunk = chunk[:0]
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("safetensors: write data: %w", err)
	}
	return nil
}

// encodeHeader validates f and returns the padded JSON header and the tensors
// in the order their data is laid out.
func encodeHeader(f *File) ([]byte, []*Tensor, error) {
	order := make([]*Tensor, len(f.Tensors))
	for i := range f.Tensors {
		order[i] = &f.Tensors[i]
	}
	slices.SortFunc(order, func(a, b *Tensor) int { return strings.Compare(a.Name, b.Name) })

	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	if len(f.Metadata) > 0 {
		keys := make([]string, 0, len(f.Metadata))
		for k := range f.Metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteString(`"` + metadataKey + `":{`)
		for i, k := range keys {
			v := f.Metadata[k]
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return nil, nil, fmt.Errorf("metadata key %q: key or value is not valid UTF-8", k)
			}
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, k)
			b.WriteByte(':')
			writeJSONString(&b, v)
		}
		b.WriteByte('}')
		first = false
	}
	var offset uint64
	for i, t := range order {
		if i > 0 && t.Name == order[i-1].Name {
			return nil, nil, fmt.Errorf("duplicate tensor name %q", t.Name)
		}
		if t.Name == metadataKey {
			return nil, nil, fmt.Errorf("tensor name %q is reserved", t.Name)
		}
		if !utf8.ValidString(t.Name) {
			return nil, nil, fmt.Errorf("tensor name %q is not valid UTF-8", t.Name)
		}
		n := uint64(1)
		for d, dim := range t.Shape {
			if dim < 0 {
				return nil, nil, fmt.Errorf("tensor %q: dimension %d is negative (%d)", t.Name, d, dim)
			}
			hi, lo := bits.Mul64(n, uint64(dim))
			if hi != 0 {
				return nil, nil, fmt.Errorf("tensor %q: shape %v overflows", t.Name, t.Shape)
			}
			n = lo
		}
		if n != uint64(len(t.Data)) {
			return nil, nil, fmt.Errorf("tensor %q: shape %v holds %d values but data has %d", t.Name, t.Shape, n, len(t.Data))
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		writeJSONString(&b, t.Name)
		b.WriteString(`:{"dtype":"F32","shape":[`)
		for d, dim := range t.Shape {
			if d > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(dim))
		}
		end := offset + 4*n
		b.WriteString(`],"data_offsets":[`)
		b.WriteString(strconv.FormatUint(offset, 10))
		b.WriteByte(',')
		b.WriteString(strconv.FormatUint(end, 10))
		b.WriteString(`]}`)
		offset = end
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	if b.Len() > MaxHeaderSize {
		return nil, nil, fmt.Errorf("header of %d bytes exceeds the %d byte limit", b.Len(), MaxHeaderSize)
	}
	return b.Bytes(), order, nil
}

// writeJSONString writes s as a JSON string the way serde_json does: only
// '"', '\\' and control characters are escaped (no HTML escaping).
func writeJSONString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\f':
			b.WriteString(`\f`)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// WriteFile writes f to path atomically (pkg/atomicfile): a crash leaves
// either the old file or the new one, never a torn one.
func WriteFile(path string, f *File) error {
	if err := atomicfile.Write(path, func(w io.Writer) error { return Write(w, f) }); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// ReadFile reads and validates the safetensors file at path.
func ReadFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: stat %s: %w", path, err)
	}
	f, err := Read(bufio.NewReaderSize(fh, 1<<20), st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}
