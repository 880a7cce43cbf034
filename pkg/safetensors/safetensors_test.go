package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// build assembles a raw file from a header string (written as is, no
// padding) and a data buffer.
func build(header string, data []byte) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

// f32 returns the little-endian bytes of the values.
func f32(vs ...float32) []byte {
	out := make([]byte, 0, 4*len(vs))
	for _, v := range vs {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
	}
	return out
}

// f64 returns the little-endian bytes of the values.
func f64(vs ...float64) []byte {
	out := make([]byte, 0, 8*len(vs))
	for _, v := range vs {
		out = binary.LittleEndian.AppendUint64(out, math.Float64bits(v))
	}
	return out
}

// sameFile reports whether two files hold the same tensors (bit-identical
// values, so NaN compares equal to itself) and metadata.
func sameFile(t *testing.T, got, want *File) {
	t.Helper()
	if len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("got %d tensors, want %d", len(got.Tensors), len(want.Tensors))
	}
	for i := range want.Tensors {
		g, w := got.Tensors[i], want.Tensors[i]
		if g.Name != w.Name || !slices.Equal(g.Shape, w.Shape) || len(g.Data) != len(w.Data) {
			t.Fatalf("tensor %d: got %q %v (%d values), want %q %v (%d values)",
				i, g.Name, g.Shape, len(g.Data), w.Name, w.Shape, len(w.Data))
		}
		for j := range w.Data {
			if math.Float32bits(g.Data[j]) != math.Float32bits(w.Data[j]) {
				t.Fatalf("tensor %q element %d: got %v, want %v", w.Name, j, g.Data[j], w.Data[j])
			}
		}
	}
	if len(got.Metadata) != len(want.Metadata) {
		t.Fatalf("metadata: got %v, want %v", got.Metadata, want.Metadata)
	}
	for k, v := range want.Metadata {
		if got.Metadata[k] != v {
			t.Fatalf("metadata %q: got %q, want %q", k, got.Metadata[k], v)
		}
	}
}

// TestWriteExactBytes checks Write against byte strings derived by hand from
// the format description (and the reference implementation's layout): the
// length prefix, compact JSON with "__metadata__" first, tensors sorted by
// name with contiguous offsets, space padding to 8 bytes, IEEE-754 data.
func TestWriteExactBytes(t *testing.T) {
	tests := []struct {
		name string
		file *File
		want string
	}{
		{
			name: "empty",
			file: &File{},
			want: "\x08\x00\x00\x00\x00\x00\x00\x00" + "{}      ",
		},
		{
			name: "metadata only",
			file: &File{Metadata: map[string]string{"framework": "pt"}},
			want: "\x28\x00\x00\x00\x00\x00\x00\x00" + `{"__metadata__":{"framework":"pt"}}` + "     ",
		},
		{
			// 64-byte header: no padding needed. Values 0..5 as float32:
			// 1.0 = 0x3f800000, 2.0 = 0x40000000, 3.0 = 0x40400000,
			// 4.0 = 0x40800000, 5.0 = 0x40a00000, stored little-endian.
			name: "one tensor, aligned header",
			file: &File{Tensors: []Tensor{{Name: "attn.0", Shape: []int{1, 2, 3}, Data: []float32{0, 1, 2, 3, 4, 5}}}},
			want: "\x40\x00\x00\x00\x00\x00\x00\x00" +
				`{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}` +
				"\x00\x00\x00\x00" + "\x00\x00\x80\x3f" + "\x00\x00\x00\x40" +
				"\x00\x00\x40\x40" + "\x00\x00\x80\x40" + "\x00\x00\xa0\x40",
		},
		{
			// 138-byte JSON padded with 6 spaces to 144 = 0x90. Tensors given
			// out of order are written sorted by name. -2.5 = 0xc0200000,
			// 0.5 = 0x3f000000, -0.0 = 0x80000000.
			name: "metadata, scalar, padding, sorting",
			file: &File{
				Tensors: []Tensor{
					{Name: "b", Shape: []int{2}, Data: []float32{0.5, float32(math.Copysign(0, -1))}},
					{Name: "a", Shape: nil, Data: []float32{-2.5}},
				},
				Metadata: map[string]string{"format": "pt"},
			},
			want: "\x90\x00\x00\x00\x00\x00\x00\x00" +
				`{"__metadata__":{"format":"pt"},` +
				`"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},` +
				`"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}` + "      " +
				"\x00\x00\x20\xc0" + "\x00\x00\x00\x3f" + "\x00\x00\x00\x80",
		},
		{
			name: "escaped name, empty tensor",
			file: &File{Tensors: []Tensor{{Name: "q\"<\\\n", Shape: []int{0, 3}}}},
			want: "\x40\x00\x00\x00\x00\x00\x00\x00" +
				`{"q\"<\\\n":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]}}` + " ",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Write(&b, tc.file); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != tc.want {
				t.Fatalf("bytes differ\n got %q\nwant %q", got, tc.want)
			}
			back, err := Read(bytes.NewReader(b.Bytes()), int64(b.Len()))
			if err != nil {
				t.Fatalf("read back: %v", err)
			}
			want := *tc.file
			want.Tensors = slices.Clone(want.Tensors)
			slices.SortFunc(want.Tensors, func(a, b Tensor) int { return strings.Compare(a.Name, b.Name) })
			sameFile(t, back, &want)
		})
	}
}

// TestReadValid covers files other writers may produce.
func TestReadValid(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
		want *File
	}{
		{
			name: "F64 converted",
			raw:  build(`{"w":{"dtype":"F64","shape":[3],"data_offsets":[0,24]}}`, f64(1.5, -1e-3, math.Inf(-1))),
			want: &File{Tensors: []Tensor{{Name: "w", Shape: []int{3}, Data: []float32{1.5, -1e-3, float32(math.Inf(-1))}}}},
		},
		{
			name: "mixed dtypes out of name order, whitespace, NaN kept",
			raw: build(`{ "z" : {"shape":[1],"dtype":"F32","data_offsets":[0,4]},`+"\n"+
				`"a":{"data_offsets":[4,20],"dtype":"F64","shape":[2]}}`+"\t  ",
				append(f32(float32(math.NaN())), f64(2, 3)...)),
			want: &File{Tensors: []Tensor{
				{Name: "a", Shape: []int{2}, Data: []float32{2, 3}},
				{Name: "z", Shape: []int{1}, Data: []float32{float32(math.NaN())}},
			}},
		},
		{
			name: "null metadata, empty tensor between others",
			raw: build(`{"__metadata__":null,"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},`+
				`"e":{"dtype":"F32","shape":[4,0],"data_offsets":[4,4]},"f":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}`,
				f32(7, 8)),
			want: &File{Tensors: []Tensor{
				{Name: "a", Shape: []int{1}, Data: []float32{7}},
				{Name: "e", Shape: []int{4, 0}, Data: []float32{}},
				{Name: "f", Shape: []int{}, Data: []float32{8}},
			}},
		},
		{
			name: "metadata with unicode and escapes",
			raw:  build(`{"__metadata__":{"k\u00e9":"v\"\n","":"x"}}`, nil),
			want: &File{Metadata: map[string]string{"ké": "v\"\n", "": "x"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Read(bytes.NewReader(tc.raw), int64(len(tc.raw)))
			if err != nil {
				t.Fatal(err)
			}
			sameFile(t, got, tc.want)
			if _, err := Read(bytes.NewReader(tc.raw), 0); err != nil {
				t.Fatalf("without a size bound: %v", err)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	good := `{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	hugeLen := binary.LittleEndian.AppendUint64(nil, MaxHeaderSize+1)
	tests := []struct {
		name     string
		raw      []byte
		maxBytes int64 // 0: len(raw)
		want     string
	}{
		{"empty input", nil, 0, "too short"},
		{"short length", []byte{1, 2, 3}, 0, "too short"},
		{"header over limit", append(hugeLen, "{}"...), -1, "exceeds the 100000000-byte limit"},
		{"header length beyond file", build(good, f32(1, 2))[:20], 0, "runs past the end"},
		{"header length beyond unbounded reader", build(good, nil)[:20], -1, "truncated header"},
		{"not UTF-8", build("{\"w\xff\":1}", nil), 0, "not valid UTF-8"},
		{"not an object", build(`[]`, nil), 0, "must start with '{'"},
		{"leading space", build(` {}`, nil), 0, "must start with '{'"},
		{"empty header", build(``, nil), 0, "must start with '{'"},
		{"invalid JSON", build(`{"w":{"dtype":"F32",}}`, nil), 0, "invalid JSON header"},
		{"unterminated", build(`{"w":{"dtype":"F32"`, nil), 0, "invalid JSON header"},
		{"garbage after object", build(`{} x`, nil), 0, "after header object"},
		{"second object", build(`{}{}`, nil), 0, "after header object"},
		{"duplicate tensor", build(`{"w":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}`, f32(1, 2)), 0, `"w": duplicate key`},
		{"duplicate metadata key", build(`{"__metadata__":{"a":"1","a":"2"}}`, nil), 0, `duplicate key "a"`},
		{"duplicate field", build(`{"w":{"dtype":"F32","dtype":"F32","shape":[],"data_offsets":[0,4]}}`, f32(1)), 0, `duplicate field "dtype"`},
		{"metadata not strings", build(`{"__metadata__":{"a":1}}`, nil), 0, `key "a": want a string`},
		{"metadata not object", build(`{"__metadata__":"x"}`, nil), 0, "want an object of strings"},
		{"tensor not object", build(`{"w":[1]}`, nil), 0, `tensor "w"`},
		{"unknown dtype", build(`{"w":{"dtype":"F33","shape":[],"data_offsets":[0,4]}}`, f32(1)), 0, `tensor "w": unknown dtype "F33"`},
		{"unsupported dtype", build(`{"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}`, f32(1)), 0, `tensor "w": dtype BF16 is not supported`},
		{"missing dtype", build(`{"w":{"shape":[],"data_offsets":[0,4]}}`, f32(1)), 0, `missing field "dtype"`},
		{"missing shape", build(`{"w":{"dtype":"F32","data_offsets":[0,4]}}`, f32(1)), 0, `missing field "shape"`},
		{"missing offsets", build(`{"w":{"dtype":"F32","shape":[]}}`, f32(1)), 0, `missing field "data_offsets"`},
		{"unknown field", build(`{"w":{"dtype":"F32","shape":[],"data_offsets":[0,4],"offsets":[0,4]}}`, f32(1)), 0, `unknown field "offsets"`},
		{"case-folded field", build(`{"w":{"DTYPE":"F32","shape":[],"data_offsets":[0,4]}}`, f32(1)), 0, `unknown field "DTYPE"`},
		{"negative dim", build(`{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, f32(1)), 0, "want a non-negative integer, got -1"},
		{"fractional offset", build(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}}`, f32(1)), 0, "got 4.0"},
		{"null shape", build(`{"w":{"dtype":"F32","shape":null,"data_offsets":[0,4]}}`, f32(1)), 0, `shape: want "["`},
		{"three offsets", build(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, f32(1)), 0, "got 3 numbers"},
		{"dim beyond int", build(`{"w":{"dtype":"F32","shape":[0,18446744073709551615],"data_offsets":[0,0]}}`, nil), 0, "too large"},
		{"shape overflow", build(`{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, f32(1)), 0, "overflows"},
		{"bytes overflow", build(`{"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,4]}}`, f32(1)), 0, "overflows"},
		{"span mismatch", build(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, f32(1, 2)), 0, `tensor "w": shape [3] of F32 needs 12 bytes but data_offsets [0, 8] span 8`},
		{"end before begin", build(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}`, f32(1, 2)), 0, "end before they begin"},
		{"overlap", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32(1, 2)), 0, `tensor "b": data_offsets [4, 8] overlap tensor "a", which ends at data offset 8`},
		{"gap", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, f32(1, 2, 3)), 0, `tensor "b": data_offsets [8, 12] leave data bytes [4, 8) covered by no tensor`},
		{"not starting at zero", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32(1, 2)), 0, `leave data bytes [0, 4)`},
		{"data beyond file", build(good, f32(1)), 0, "past the end of the"},
		{"truncated data, unbounded reader", build(good, f32(1)), -1, `truncated data: tensor "w" needs data bytes [0, 8) (file offset 62) but the file ends at file offset 66`},
		{"trailing bytes", build(good, f32(1, 2, 3)), 0, "trailing bytes after the data buffer at file offset 70"},
		{"F64 out of float32 range", build(`{"w":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}}`, f64(1, 1e300)), 0, `tensor "w": F64 element 1 (file offset 71) is 1e+300, outside the float32 range`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			maxBytes := tc.maxBytes
			if maxBytes == 0 {
				maxBytes = int64(len(tc.raw))
			}
			_, err := Read(bytes.NewReader(tc.raw), maxBytes)
			if err == nil {
				t.Fatalf("Read accepted an invalid file; want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name string
		file *File
		want string
	}{
		{"nil", nil, "nil file"},
		{"duplicate", &File{Tensors: []Tensor{{Name: "a", Data: []float32{1}}, {Name: "a", Data: []float32{2}}}}, `duplicate tensor name "a"`},
		{"reserved", &File{Tensors: []Tensor{{Name: "__metadata__", Data: []float32{1}}}}, "reserved"},
		{"shape mismatch", &File{Tensors: []Tensor{{Name: "a", Shape: []int{2, 2}, Data: []float32{1, 2, 3}}}}, "shape [2 2] holds 4 values but data has 3"},
		{"negative dim", &File{Tensors: []Tensor{{Name: "a", Shape: []int{-1}, Data: nil}}}, "dimension 0 is negative"},
		{"bad UTF-8 name", &File{Tensors: []Tensor{{Name: "a\xff", Data: []float32{1}}}}, "not valid UTF-8"},
		{"bad UTF-8 metadata", &File{Metadata: map[string]string{"k": "\xff"}}, "not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			err := Write(&b, tc.file)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestRoundTripAndDeterminism(t *testing.T) {
	f := &File{
		Tensors: []Tensor{
			{Name: "layers.1.weight", Shape: []int{3, 5}, Data: make([]float32, 15)},
			{Name: "layers.0.bias", Shape: []int{5}, Data: []float32{1, -1, float32(math.NaN()), float32(math.Inf(1)), math.SmallestNonzeroFloat32}},
			{Name: "layers.0.weight", Shape: []int{5, 7}, Data: make([]float32, 35)},
		},
		Metadata: map[string]string{"arch": "784-1000-1", "b": "2", "a": "1"},
	}
	for i := range f.Tensors[0].Data {
		f.Tensors[0].Data[i] = float32(i) * 0.25
	}
	for i := range f.Tensors[2].Data {
		f.Tensors[2].Data[i] = -float32(i) / 3
	}
	var first bytes.Buffer
	if err := Write(&first, f); err != nil {
		t.Fatal(err)
	}
	// Same content, tensors in another order: identical bytes.
	g := *f
	g.Tensors = []Tensor{f.Tensors[2], f.Tensors[0], f.Tensors[1]}
	var second bytes.Buffer
	if err := Write(&second, &g); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Fatal("Write is not deterministic across tensor orders")
	}
	if hdr := binary.LittleEndian.Uint64(first.Bytes()); hdr%8 != 0 {
		t.Fatalf("header length %d is not a multiple of 8", hdr)
	}
	back, err := Read(bytes.NewReader(first.Bytes()), int64(first.Len()))
	if err != nil {
		t.Fatal(err)
	}
	want := &File{Tensors: []Tensor{f.Tensors[1], f.Tensors[2], f.Tensors[0]}, Metadata: f.Metadata}
	sameFile(t, back, want)
	if tt, ok := back.Lookup("layers.1.weight"); !ok || tt.Shape[1] != 5 || tt.Data[4] != 1 {
		t.Fatalf("Lookup: got %v, %v", tt, ok)
	}
	if _, ok := back.Lookup("missing"); ok {
		t.Fatal("Lookup found a missing tensor")
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	f := &File{Tensors: []Tensor{{Name: "w", Shape: []int{2}, Data: []float32{1, 2}}}}
	if err := WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	// Overwrite with new content; the old file is replaced whole.
	f.Tensors[0].Data[1] = 3
	if err := WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	// A failing write leaves the previous file and no temporary file.
	bad := &File{Tensors: []Tensor{{Name: "w", Shape: []int{3}, Data: []float32{1}}}}
	if err := WriteFile(path, bad); err == nil {
		t.Fatal("WriteFile accepted an invalid file")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "model.safetensors" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %v, want only model.safetensors", names)
	}
	back, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sameFile(t, back, f)
	if _, err := ReadFile(filepath.Join(dir, "missing.safetensors")); err == nil {
		t.Fatal("ReadFile of a missing file succeeded")
	}
	if err := WriteFile(filepath.Join(dir, "no", "such", "dir.safetensors"), f); err == nil {
		t.Fatal("WriteFile into a missing directory succeeded")
	}
}

func FuzzRead(f *testing.F) {
	seeds := [][]byte{
		build(`{}`, nil),
		build(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32(1, 2)),
		build(`{"__metadata__":{"a":"b"},"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}}`, f64(3)),
		build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32(1, 2)),
		append(binary.LittleEndian.AppendUint64(nil, MaxHeaderSize), '{'),
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, maxBytes := range []int64{int64(len(raw)), -1} {
			got, err := Read(bytes.NewReader(raw), maxBytes)
			if err != nil {
				continue
			}
			// Whatever Read accepts, Write must reproduce and Read accept again.
			var b bytes.Buffer
			if err := Write(&b, got); err != nil {
				t.Fatalf("Write of an accepted file: %v", err)
			}
			again, err := Read(bytes.NewReader(b.Bytes()), int64(b.Len()))
			if err != nil {
				t.Fatalf("Read of our own output: %v", err)
			}
			sameFile(t, again, got)
		}
	})
}

// BenchmarkWriteRead measures a model of the mlp-step size (784-1000-1000-1,
// about 1.8 M float32 parameters) written to and read from memory.
func BenchmarkWriteRead(b *testing.B) {
	f := &File{Tensors: []Tensor{
		{Name: "0.weight", Shape: []int{1000, 784}, Data: make([]float32, 784000)},
		{Name: "0.bias", Shape: []int{1000}, Data: make([]float32, 1000)},
		{Name: "1.weight", Shape: []int{1000, 1000}, Data: make([]float32, 1000000)},
		{Name: "1.bias", Shape: []int{1000}, Data: make([]float32, 1000)},
		{Name: "2.weight", Shape: []int{1, 1000}, Data: make([]float32, 1000)},
		{Name: "2.bias", Shape: []int{1}, Data: make([]float32, 1)},
	}}
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := Write(&buf, f); err != nil {
			b.Fatal(err)
		}
		if _, err := Read(bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(buf.Len()))
}
