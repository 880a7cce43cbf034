package allreduce

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"
)

// split cuts b into pieces of the given sizes (the last piece takes the rest).
func split(b []byte, sizes ...int) (data []byte, parts [][]byte) {
	var pieces [][]byte
	for _, n := range sizes {
		n = min(n, len(b))
		pieces = append(pieces, b[:n])
		b = b[n:]
	}
	pieces = append(pieces, b)
	return pieces[0], pieces[1:]
}

func TestApplyPayload(t *testing.T) {
	const n = 1000
	src := make([]float32, n)
	base := make([]float32, n)
	for i := range src {
		src[i] = float32(i)*0.25 - 7
		base[i] = float32(i%13) * 1.5
	}
	wire := make([]byte, 4*n+3) // +3: room to shift the payload off 4-byte alignment
	tests := []struct {
		name  string
		shift int   // payload starts this many bytes into wire
		sizes []int // piece sizes (Data first), the rest goes to the last part
	}{
		{"one aligned piece", 0, nil},
		{"one unaligned piece", 1, nil},
		{"aligned pieces", 0, []int{400, 1600}},
		{"pieces cut inside elements", 0, []int{3, 1, 2, 2, 1001, 6}},
		{"unaligned pieces cut inside elements", 3, []int{5, 16384 % 4000, 7}},
		{"empty pieces", 2, []int{0, 0, 17, 0, 1, 0}},
		{"element split over three pieces", 1, []int{1, 1, 1, 1}},
	}
	for _, tc := range tests {
		for _, op := range []string{"add", "copy"} {
			t.Run(fmt.Sprintf("%s/%s", tc.name, op), func(t *testing.T) {
				payload := wire[tc.shift : tc.shift+4*n]
				for i, v := range src {
					binary.LittleEndian.PutUint32(payload[4*i:], math.Float32bits(v))
				}
				f := &Frame{}
				f.Data, f.Parts = split(payload, tc.sizes...)
				if f.PayloadLen() != 4*n {
					t.Fatalf("PayloadLen %d, want %d", f.PayloadLen(), 4*n)
				}
				dst := append([]float32(nil), base...)
				if op == "add" {
					applyPayload(dst, f, addLE)
				} else {
					applyPayload(dst, f, copyLE)
				}
				for i := range dst {
					want := src[i]
					if op == "add" {
						want = base[i] + src[i]
					}
					if math.Float32bits(dst[i]) != math.Float32bits(want) {
						t.Fatalf("element %d: got %g, want %g", i, dst[i], want)
					}
				}
			})
		}
	}
}

func TestAddLEMatchesScalar(t *testing.T) {
	// The vector kernel and the scalar paths must give bit-identical sums for
	// every length (tails) and every source alignment.
	for _, n := range []int{0, 1, 7, 8, 9, 31, 32, 33, 100, 1031, 5000} {
		for shift := range 4 {
			t.Run(fmt.Sprintf("n=%d/shift=%d", n, shift), func(t *testing.T) {
				wire := make([]byte, 4*n+shift)
				src := wire[shift:]
				dst := make([]float32, n)
				want := make([]float32, n)
				for i := range dst {
					v := float32(math.Sin(float64(i))) * 1e3
					binary.LittleEndian.PutUint32(src[4*i:], math.Float32bits(v))
					dst[i] = float32(math.Cos(float64(i))) * 1e-2
					want[i] = dst[i] + v
				}
				addLE(dst, src)
				for i := range dst {
					if math.Float32bits(dst[i]) != math.Float32bits(want[i]) {
						t.Fatalf("element %d: got %g, want %g", i, dst[i], want[i])
					}
				}
			})
		}
	}
}

func TestApplyPayloadInt64(t *testing.T) {
	const n = 1000
	src := make([]int64, n)
	base := make([]int64, n)
	for i := range src {
		src[i] = int64(i)*0x0123_4567_89ab_cdef + math.MinInt64/3 // wraps: every byte varies
		base[i] = math.MaxInt64 - int64(i%13)*(1<<61)
	}
	wire := make([]byte, 8*n+7) // +7: room to shift the payload off 8-byte alignment
	tests := []struct {
		name  string
		shift int
		sizes []int
	}{
		{"one aligned piece", 0, nil},
		{"one piece off by 4", 4, nil},
		{"one piece off by 3", 3, nil},
		{"aligned pieces", 0, []int{800, 3200}},
		{"pieces cut inside elements", 0, []int{3, 1, 2, 4, 6, 1001, 12}},
		{"unaligned pieces cut inside elements", 5, []int{7, 9, 4093}},
		{"empty pieces", 2, []int{0, 0, 17, 0, 1, 0}},
		{"element over eight pieces", 1, []int{1, 1, 1, 1, 1, 1, 1, 1}},
	}
	for _, tc := range tests {
		for _, op := range []string{"add", "copy"} {
			t.Run(fmt.Sprintf("%s/%s", tc.name, op), func(t *testing.T) {
				payload := wire[tc.shift : tc.shift+8*n]
				for i, v := range src {
					binary.LittleEndian.PutUint64(payload[8*i:], uint64(v))
				}
				f := &Frame{}
				f.Data, f.Parts = split(payload, tc.sizes...)
				dst := append([]int64(nil), base...)
				if op == "add" {
					applyPayload(dst, f, addInt64LE)
				} else {
					applyPayload(dst, f, copyInt64LE)
				}
				for i := range dst {
					want := src[i]
					if op == "add" {
						want = base[i] + src[i] // wrapping, as Go defines it
					}
					if dst[i] != want {
						t.Fatalf("element %d: got %d, want %d", i, dst[i], want)
					}
				}
			})
		}
	}
}

func TestEncodeInt64IsLittleEndian(t *testing.T) {
	src := []int64{1, -1, math.MinInt64, 0x0102030405060708}
	data, _ := encodeInt64(nil, src)
	if len(data) != 8*len(src) {
		t.Fatalf("%d bytes for %d elements", len(data), len(src))
	}
	for i, v := range src {
		if got := int64(binary.LittleEndian.Uint64(data[8*i:])); got != v {
			t.Fatalf("element %d encodes as %d, want %d", i, got, v)
		}
	}
}

func TestAddInt64LEMatchesScalar(t *testing.T) {
	// The vector kernel, the aligned and the staged paths must all give
	// Go's wrapping sums, for every length (tails) and source alignment.
	for _, n := range []int{0, 1, 3, 4, 5, 15, 16, 17, 100, 1031, 5000} {
		for shift := range 8 {
			t.Run(fmt.Sprintf("n=%d/shift=%d", n, shift), func(t *testing.T) {
				wire := make([]byte, 8*n+shift)
				src := wire[shift:]
				dst := make([]int64, n)
				want := make([]int64, n)
				for i := range dst {
					v := int64(i)*0x1f2e_3d4c_5b6a_7988 + math.MaxInt64/2
					binary.LittleEndian.PutUint64(src[8*i:], uint64(v))
					dst[i] = math.MaxInt64 - int64(i)*1_000_003
					want[i] = dst[i] + v
				}
				addInt64LE(dst, src)
				for i := range dst {
					if dst[i] != want[i] {
						t.Fatalf("element %d: got %d, want %d", i, dst[i], want[i])
					}
				}
			})
		}
	}
}
