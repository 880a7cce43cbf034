package grpcring

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	ringtrainv1 "github.com/ringtrain/ringtrain/proto/ringtrain/v1"
)

// chunks splits b into pieces of size n, as gRPC hands over received HTTP/2 frames.
func chunks(b []byte, n int) mem.BufferSlice {
	var s mem.BufferSlice
	for len(b) > 0 {
		k := min(n, len(b))
		s = append(s, mem.SliceBuffer(b[:k]))
		b = b[k:]
	}
	return s
}

func TestCodecMatchesProto(t *testing.T) {
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

	c := newCodec()
	out, err := c.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Materialize(); !bytes.Equal(got, std) {
		t.Fatalf("codec marshal differs from proto.Marshal (%d vs %d bytes)", len(got), len(std))
	}
	out.Free()

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
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got ringtrainv1.RingFrame
			if err := c.Unmarshal(chunks(tc.wire, tc.chunk), &got); err != nil {
				t.Fatal(err)
			}
			if got.Generation != want.Generation || got.Step != want.Step || got.Round != want.Round ||
				got.Seq != want.Seq || got.Offset != want.Offset || !bytes.Equal(got.Data, want.Data) {
				t.Fatalf("decoded %v, want %v", &got, want)
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
		var m ringtrainv1.RingFrame
		if err := newCodec().Unmarshal(chunks(std[:cut], 4), &m); err == nil {
			t.Errorf("a message cut to %d of %d bytes decoded without error", cut, len(std))
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
