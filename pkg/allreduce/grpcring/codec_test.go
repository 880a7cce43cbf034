package grpcring

import (
	"bytes"
	"fmt"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	ringtrainv1 "github.com/ringtrain/ringtrain/proto/ringtrain/v1"
)

// chunks splits b into pieces of size n, as gRPC hands over received HTTP/2
// frames; each piece is a reference-counted buffer from pool.
func chunks(b []byte, n int, pool mem.BufferPool) mem.BufferSlice {
	var s mem.BufferSlice
	for len(b) > 0 {
		k := min(n, len(b))
		buf := pool.Get(k)
		copy(*buf, b[:k])
		s = append(s, mem.NewBuffer(buf, pool))
		b = b[k:]
	}
	return s
}

// countingPool counts the buffers handed out and not yet returned.
type countingPool struct {
	out int
}

func (p *countingPool) Get(n int) *[]byte {
	p.out++
	b := make([]byte, n, max(n, 2<<10)) // above gRPC's pooling threshold, so buffers are reference-counted
	return &b
}

func (p *countingPool) Put(*[]byte) { p.out-- }

func join(parts [][]byte) []byte { return bytes.Join(parts, nil) }

func TestCodecMarshalMatchesProto(t *testing.T) {
	for _, size := range []int{0, 8, minViewBytes - 4, minViewBytes, 100_000} {
		for _, viewable := range []bool{false, true} {
			t.Run(fmt.Sprintf("payload=%d/view=%v", size, viewable), func(t *testing.T) {
				data := make([]byte, size)
				for i := range data {
					data[i] = byte(i * 7)
				}
				f := &outFrame{generation: 1 << 40, step: 123456, round: 5, seq: 300, offset: 1<<33 + 1, data: data}
				rel := newReleaser()
				if viewable {
					f.release = rel
				}
				std, err := proto.Marshal(&ringtrainv1.RingFrame{Generation: f.generation, Step: f.step, Round: f.round, Seq: f.seq, Offset: f.offset, Data: data})
				if err != nil {
					t.Fatal(err)
				}
				c := newCodec()
				out, err := c.Marshal(f)
				if err != nil {
					t.Fatal(err)
				}
				if got := out.Materialize(); !bytes.Equal(got, std) {
					t.Fatalf("codec marshal differs from proto.Marshal (%d vs %d bytes)", len(got), len(std))
				}
				wantView := viewable && size >= minViewBytes
				if f.viewed != wantView {
					t.Fatalf("viewed = %v, want %v", f.viewed, wantView)
				}
				out.Free()
				if wantView {
					select {
					case <-rel.ch:
					default:
						t.Fatal("freeing the marshalled message did not release the payload view")
					}
				}
			})
		}
	}
}

func TestCodecUnmarshal(t *testing.T) {
	data := make([]byte, 4*1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	want := &ringtrainv1.RingFrame{Generation: 1 << 40, Step: 123456, Round: 5, Seq: 300, Offset: 1<<33 + 1, Data: data}
	std, err := proto.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	// Same message with the payload first, an unknown varint, bytes and fixed fields.
	var reordered []byte
	reordered = protowire.AppendTag(reordered, 6, protowire.BytesType)
	reordered = protowire.AppendBytes(reordered, data)
	reordered = protowire.AppendTag(reordered, 99, protowire.VarintType)
	reordered = protowire.AppendVarint(reordered, 7)
	reordered = protowire.AppendTag(reordered, 98, protowire.BytesType)
	reordered = protowire.AppendBytes(reordered, []byte("skip me"))
	reordered = protowire.AppendTag(reordered, 97, protowire.Fixed64Type)
	reordered = protowire.AppendFixed64(reordered, 1)
	reordered = protowire.AppendTag(reordered, 96, protowire.Fixed32Type)
	reordered = protowire.AppendFixed32(reordered, 1)
	for _, f := range []struct {
		num protowire.Number
		v   uint64
	}{{5, want.Offset}, {4, uint64(want.Seq)}, {3, uint64(want.Round)}, {2, want.Step}, {1, want.Generation}} {
		reordered = protowire.AppendTag(reordered, f.num, protowire.VarintType)
		reordered = protowire.AppendVarint(reordered, f.v)
	}

	tests := []struct {
		name  string
		wire  []byte
		chunk int
	}{
		{"standard, one chunk", std, len(std)},
		{"standard, 16 KiB chunks", std, 16 << 10},
		{"standard, 3-byte chunks", std, 3},
		{"reordered with unknown fields, 5-byte chunks", reordered, 5},
	}
	c := newCodec()
	var got inFrame // reused across cases, as the Service does
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pool := &countingPool{}
			in := chunks(tc.wire, tc.chunk, pool)
			if err := c.Unmarshal(in, &got); err != nil {
				t.Fatal(err)
			}
			in.Free() // gRPC frees its references after Unmarshal; the frame keeps its own
			if got.generation != want.Generation || got.step != want.Step || got.round != want.Round ||
				got.seq != want.Seq || got.offset != want.Offset || got.n != len(data) || !bytes.Equal(join(got.parts), data) {
				t.Fatalf("decoded generation %d step %d round %d seq %d offset %d, %d payload bytes; want %v",
					got.generation, got.step, got.round, got.seq, got.offset, got.n, want)
			}
			if pool.out == 0 {
				t.Fatal("the decoded frame holds no reference to the receive buffers its payload points into")
			}
			got.free()
			if pool.out != 0 {
				t.Fatalf("%d receive buffers not released after free", pool.out)
			}
		})
	}
}

func TestCodecRejectsTruncated(t *testing.T) {
	std, err := proto.Marshal(&ringtrainv1.RingFrame{Generation: 3, Data: make([]byte, 64)})
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int{1, 10, len(std) - 1} {
		var m inFrame
		pool := &countingPool{}
		in := chunks(std[:cut], 4, pool)
		if err := newCodec().Unmarshal(in, &m); err == nil {
			t.Errorf("a message cut to %d of %d bytes decoded without error", cut, len(std))
		}
		in.Free()
		if pool.out != 0 {
			t.Errorf("a message cut to %d bytes: %d receive buffers still referenced", cut, pool.out)
		}
	}
}

func TestCodecDelegatesOtherMessages(t *testing.T) {
	c := newCodec()
	want := &ringtrainv1.FramesSummary{Frames: 3, Bytes: 1 << 20}
	out, err := c.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var got ringtrainv1.FramesSummary
	if err := c.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&got, want) {
		t.Fatalf("decoded %v, want %v", &got, want)
	}
}
