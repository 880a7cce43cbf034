package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
)

// idxImages builds an IDX3 image file with the given header fields and
// payload.
func idxImages(magic, count, rows, cols uint32, payload []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, []uint32{magic, count, rows, cols})
	b.Write(payload)
	return b.Bytes()
}

// idxLabels builds an IDX1 label file.
func idxLabels(magic, count uint32, labels []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, []uint32{magic, count})
	b.Write(labels)
	return b.Bytes()
}

func gzipBytes(t testing.TB, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	if _, err := z.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// seq returns n bytes 0, 1, 2, ...
func seq(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

func TestReadIDXValid(t *testing.T) {
	img := idxImages(0x803, 3, 2, 5, seq(30))
	lab := idxLabels(0x801, 3, []byte{7, 0, 9})
	for _, tt := range []struct {
		name     string
		img, lab []byte
	}{
		{"plain", img, lab},
		{"gzip", gzipBytes(t, img), gzipBytes(t, lab)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pixels, rows, cols, count, err := ReadIDXImages(bytes.NewReader(tt.img), "img")
			if err != nil {
				t.Fatal(err)
			}
			if rows != 2 || cols != 5 || count != 3 || !slices.Equal(pixels, seq(30)) {
				t.Errorf("got rows=%d cols=%d count=%d pixels=%v", rows, cols, count, pixels)
			}
			labels, err := ReadIDXLabels(bytes.NewReader(tt.lab), "lab")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(labels, []byte{7, 0, 9}) {
				t.Errorf("labels %v", labels)
			}
		})
	}
}

func TestReadIDXImagesErrors(t *testing.T) {
	gz := gzipBytes(t, idxImages(0x803, 3, 2, 2, seq(12)))
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "f.idx: byte offset 0: reading magic number: unexpected EOF"},
		{"short magic", []byte{0, 0, 8}, "byte offset 0: reading magic number"},
		{"labels magic", idxImages(0x801, 1, 1, 1, []byte{1}), "byte offset 0: magic number 0x00000801, want 0x00000803 (IDX images)"},
		{"float type", idxImages(0x0d03, 1, 1, 1, []byte{1}), "magic number 0x00000d03"},
		{"missing dims", []byte{0, 0, 8, 3, 0, 0, 0, 1, 0, 0}, "byte offset 8: reading dimension 1: unexpected EOF"},
		{"zero rows", idxImages(0x803, 1, 0, 28, nil), "image size 0x28, want both > 0"},
		{"zero count", idxImages(0x803, 0, 28, 28, nil), "image count is 0"},
		{"huge dimension", idxImages(0x803, 1, 0xffffffff, 1, nil), "byte offset 8: dimension 1 is 4294967295, too large"},
		{"over limit", idxImages(0x803, 1<<20, 1<<10, 1<<10, nil), "exceed the 4294967296-byte limit"},
		{"truncated", idxImages(0x803, 3, 2, 2, seq(9)), "byte offset 25: truncated image data: header says 3 images of 2x2 (12 bytes), file has 9 bytes (2 whole images)"},
		{"trailing", idxImages(0x803, 3, 2, 2, seq(13)), "byte offset 28: unexpected trailing data"},
		{"truncated gzip", gz[:len(gz)-12], "f.idx (decompressed)"},
		{"corrupt gzip header", []byte{0x1f, 0x8b, 0, 0}, "f.idx: gzip header"},
		{"gzip checksum", func() []byte { c := slices.Clone(gz); c[len(c)-8] ^= 1; return c }(), "checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, _, err := ReadIDXImages(bytes.NewReader(tt.in), "f.idx")
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestReadIDXLabelsErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"images magic", idxLabels(0x803, 1, []byte{1}), "l.idx: byte offset 0: magic number 0x00000803, want 0x00000801 (IDX labels)"},
		{"zero count", idxLabels(0x801, 0, nil), "label count is 0"},
		{"truncated", idxLabels(0x801, 5, []byte{1, 2}), "byte offset 10: truncated label data: header says 5 labels, file has 2"},
		{"trailing", idxLabels(0x801, 1, []byte{1, 2}), "byte offset 9: unexpected trailing data"},
		{"no count", []byte{0, 0, 8, 1}, "byte offset 4: reading dimension 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadIDXLabels(bytes.NewReader(tt.in), "l.idx")
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// TestReadPayloadGrows checks the path for payloads above the preallocation
// limit: a header claiming more than arrives must fail without allocating
// the claimed size, and a complete payload must come back intact.
func TestReadPayloadGrows(t *testing.T) {
	n := idxPreallocLimit + 3
	src := bytes.NewReader(make([]byte, n))
	got, err := readPayload(src, n)
	if err != nil || len(got) != n {
		t.Fatalf("readPayload(%d bytes) = %d bytes, %v", n, len(got), err)
	}
	if _, err := readPayload(bytes.NewReader(make([]byte, 10)), 1<<31); err == nil {
		t.Fatal("readPayload of a short stream succeeded")
	}
}

// FuzzIDX feeds arbitrary bytes to both IDX readers: they must never panic,
// and whatever they accept must be self-consistent.
func FuzzIDX(f *testing.F) {
	f.Add(idxImages(0x803, 2, 2, 3, seq(12)))
	f.Add(idxLabels(0x801, 4, []byte{0, 1, 2, 9}))
	f.Add(gzipBytes(f, idxImages(0x803, 1, 28, 28, seq(784))))
	f.Add(gzipBytes(f, idxLabels(0x801, 2, []byte{1, 2})))
	f.Add(idxImages(0x803, 3, 2, 2, seq(9)))            // truncated
	f.Add(idxImages(0x803, 0xffffffff, 28, 28, nil))    // absurd count
	f.Add(idxImages(0x801, 1, 1, 1, []byte{1}))         // wrong magic
	f.Add(idxLabels(0x801, 1, []byte{1, 2}))            // trailing byte
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}) // gzip header only
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		pixels, rows, cols, count, err := ReadIDXImages(bytes.NewReader(in), "fuzz")
		if err == nil && (rows <= 0 || cols <= 0 || count <= 0 || len(pixels) != rows*cols*count) {
			t.Fatalf("accepted inconsistent images: rows=%d cols=%d count=%d len=%d", rows, cols, count, len(pixels))
		}
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz") {
			t.Fatalf("error does not name the source: %v", err)
		}
		labels, err := ReadIDXLabels(bytes.NewReader(in), "fuzz")
		if err == nil && len(labels) == 0 {
			t.Fatal("accepted an empty label file")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz") {
			t.Fatalf("error does not name the source: %v", err)
		}
	})
}
