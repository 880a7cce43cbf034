package data

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// IDX magic numbers: two zero bytes, the element type (0x08 = unsigned byte)
// and the number of dimensions.
const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
)

// Limits that keep a hostile or corrupt header from making the reader
// allocate absurd amounts of memory before it finds the data missing.
const (
	// maxIDXBytes bounds the payload of one IDX file (4 GiB).
	maxIDXBytes = 1 << 32
	// idxPreallocLimit is the largest payload allocated up front from the
	// header alone (all of MNIST's training images, 47 MB, fit). Larger
	// payloads grow as bytes actually arrive.
	idxPreallocLimit = 64 << 20
)

// offsetReader counts the bytes read so errors can name a byte offset.
type offsetReader struct {
	r   io.Reader
	off int64
}

func (o *offsetReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	o.off += int64(n)
	return n, err
}

// idxSource wraps r for IDX parsing: it decompresses gzip input transparently
// (detected by its magic bytes 1f 8b; an IDX file starts with 00 00) and
// counts offsets in the decompressed stream. what describes the stream in
// errors, e.g. `train-images-idx3-ubyte.gz (decompressed)`.
func idxSource(r io.Reader, name string) (src *offsetReader, what string, closeFn func() error, err error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(2)
	if len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, "", nil, fmt.Errorf("%s: gzip header: %w", name, err)
		}
		z.Multistream(false)
		return &offsetReader{r: z}, name + " (decompressed)", z.Close, nil
	}
	return &offsetReader{r: br}, name, func() error { return nil }, nil
}

// ReadIDXImages reads an IDX3 unsigned-byte image file (magic 0x00000803:
// count, rows, cols, then count*rows*cols pixel bytes) from r, plain or
// gzip-compressed. It rejects a wrong magic, zero or oversized dimensions,
// truncated data and trailing bytes; errors name the source and byte offset
// (offsets count decompressed bytes for gzip input).
func ReadIDXImages(r io.Reader, name string) (pixels []uint8, rows, cols, count int, err error) {
	src, what, closeFn, err := idxSource(r, name)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	pixels, rows, cols, count, err = readIDXImages(src, what)
	if err == nil {
		err = expectEOF(src, what)
	}
	if err == nil {
		err = closeFn()
		if err != nil {
			err = fmt.Errorf("%s: %w", what, err)
		}
	}
	if err != nil {
		return nil, 0, 0, 0, err
	}
	return pixels, rows, cols, count, nil
}

// ReadIDXLabels reads an IDX1 unsigned-byte label file (magic 0x00000801:
// count, then count label bytes) from r, plain or gzip-compressed. It does not
// check the label range (that depends on the data set; callers do, naming
// the offset 8+i of label i). Errors name the source and byte offset.
func ReadIDXLabels(r io.Reader, name string) (labels []uint8, err error) {
	src, what, closeFn, err := idxSource(r, name)
	if err != nil {
		return nil, err
	}
	labels, err = readIDXLabels(src, what)
	if err == nil {
		err = expectEOF(src, what)
	}
	if err == nil {
		err = closeFn()
		if err != nil {
			err = fmt.Errorf("%s: %w", what, err)
		}
	}
	if err != nil {
		return nil, err
	}
	return labels, nil
}

// idxLabelOffset is the byte offset of label i in an IDX1 file.
func idxLabelOffset(i int) int64 { return 8 + int64(i) }

// readIDXHeader reads the magic and ndim dimensions.
func readIDXHeader(src *offsetReader, what string, magic uint32, ndim int) ([]int, error) {
	var buf [4]byte
	start := src.off
	if _, err := io.ReadFull(src, buf[:]); err != nil {
		return nil, fmt.Errorf("%s: byte offset %d: reading magic number: %w", what, start, truncated(err))
	}
	if got := binary.BigEndian.Uint32(buf[:]); got != magic {
		kind := "labels"
		if magic == idxImagesMagic {
			kind = "images"
		}
		return nil, fmt.Errorf("%s: byte offset %d: magic number 0x%08x, want 0x%08x (IDX %s)", what, start, got, magic, kind)
	}
	dims := make([]int, ndim)
	for k := range dims {
		off := src.off
		if _, err := io.ReadFull(src, buf[:]); err != nil {
			return nil, fmt.Errorf("%s: byte offset %d: reading dimension %d: %w", what, off, k, truncated(err))
		}
		v := binary.BigEndian.Uint32(buf[:])
		if v > 1<<31-1 {
			return nil, fmt.Errorf("%s: byte offset %d: dimension %d is %d, too large", what, off, k, v)
		}
		dims[k] = int(v)
	}
	return dims, nil
}

func readIDXImages(src *offsetReader, what string) (pixels []uint8, rows, cols, count int, err error) {
	dims, err := readIDXHeader(src, what, idxImagesMagic, 3)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	count, rows, cols = dims[0], dims[1], dims[2]
	if rows == 0 || cols == 0 {
		return nil, 0, 0, 0, fmt.Errorf("%s: byte offset 8: image size %dx%d, want both > 0", what, rows, cols)
	}
	if count == 0 {
		return nil, 0, 0, 0, fmt.Errorf("%s: byte offset 4: image count is 0", what)
	}
	size := uint64(rows) * uint64(cols) // < 2^62, no overflow
	if size > maxIDXBytes || uint64(count)*size > maxIDXBytes {
		return nil, 0, 0, 0, fmt.Errorf("%s: byte offset 4: %d images of %dx%d exceed the %d-byte limit", what, count, rows, cols, uint64(maxIDXBytes))
	}
	pixels, err = readPayload(src, int(uint64(count)*size))
	if err != nil {
		got := src.off - 16
		return nil, 0, 0, 0, fmt.Errorf("%s: byte offset %d: truncated image data: header says %d images of %dx%d (%d bytes), file has %d bytes (%d whole images): %w",
			what, src.off, count, rows, cols, uint64(count)*size, got, uint64(got)/size, err)
	}
	return pixels, rows, cols, count, nil
}

func readIDXLabels(src *offsetReader, what string) ([]uint8, error) {
	dims, err := readIDXHeader(src, what, idxLabelsMagic, 1)
	if err != nil {
		return nil, err
	}
	count := dims[0]
	if count == 0 {
		return nil, fmt.Errorf("%s: byte offset 4: label count is 0", what)
	}
	labels, err := readPayload(src, count)
	if err != nil {
		return nil, fmt.Errorf("%s: byte offset %d: truncated label data: header says %d labels, file has %d: %w",
			what, src.off, count, src.off-8, err)
	}
	return labels, nil
}

// readPayload reads exactly n bytes. Up to idxPreallocLimit it allocates the
// whole buffer at once (no copy); beyond that it grows as data arrives so a
// header cannot force a huge allocation on its own.
func readPayload(src io.Reader, n int) ([]byte, error) {
	if n <= idxPreallocLimit {
		buf := make([]byte, n)
		if _, err := io.ReadFull(src, buf); err != nil {
			return nil, truncated(err)
		}
		return buf, nil
	}
	buf := make([]byte, 0, idxPreallocLimit)
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		chunk := min(cap(buf), n) - len(buf)
		m, err := io.ReadFull(src, buf[len(buf):len(buf)+chunk])
		buf = buf[:len(buf)+m]
		if err != nil {
			return nil, truncated(err)
		}
	}
	return buf, nil
}

// expectEOF fails if src has bytes left after the declared payload.
func expectEOF(src *offsetReader, what string) error {
	var b [1]byte
	off := src.off
	n, err := io.ReadFull(src, b[:])
	if n > 0 {
		return fmt.Errorf("%s: byte offset %d: unexpected trailing data after the declared payload", what, off)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: byte offset %d: %w", what, off, err)
	}
	return nil
}

// truncated turns io.EOF into io.ErrUnexpectedEOF: a payload that ends early
// is a truncated file, not a clean end.
func truncated(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
