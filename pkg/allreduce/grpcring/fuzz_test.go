package grpcring

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	ringtrainv1 "github.com/ringtrain/ringtrain/proto/ringtrain/v1"
)

// FuzzCodecUnmarshal feeds arbitrary bytes, cut into up to three buffers as
// they may arrive from the network, to the ring codec's decoder. It must
// never panic, and whatever it accepts must be what the standard protobuf
// decoder reads from the same bytes.
func FuzzCodecUnmarshal(f *testing.F) {
	good, _ := proto.Marshal(&ringtrainv1.RingFrame{Generation: 3, Step: 7, Round: 1, Seq: 2, Offset: 1024, Data: bytes.Repeat([]byte{1, 2, 3, 4}, 5)})
	f.Add(good, uint8(3), uint8(11))
	f.Add([]byte{}, uint8(0), uint8(0))
	f.Add([]byte{0x32, 0xff, 0xff, 0xff, 0xff, 0x0f}, uint8(1), uint8(2)) // a payload length far beyond the input
	f.Add([]byte{0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, uint8(4), uint8(0))
	c := newCodec()
	f.Fuzz(func(t *testing.T, data []byte, cut1, cut2 uint8) {
		a := min(int(cut1), len(data))
		b := min(a+int(cut2), len(data))
		var bs mem.BufferSlice
		for _, part := range [][]byte{data[:a], data[a:b], data[b:]} {
			if len(part) > 0 {
				bs = append(bs, mem.SliceBuffer(bytes.Clone(part)))
			}
		}
		var in inFrame
		err := c.Unmarshal(bs, &in)
		defer in.free()
		var ref ringtrainv1.RingFrame
		refErr := proto.Unmarshal(data, &ref)
		if err != nil {
			return
		}
		if refErr != nil {
			t.Fatalf("the ring codec accepted bytes the protobuf decoder refuses (%v)", refErr)
		}
		if in.generation != ref.Generation || in.step != ref.Step || in.round != ref.Round || in.seq != ref.Seq || in.offset != ref.Offset {
			t.Fatalf("header %+v, protobuf reads %v", in, &ref)
		}
		var payload []byte
		for _, p := range in.parts {
			payload = append(payload, p...)
		}
		if !bytes.Equal(payload, ref.Data) || in.n != len(ref.Data) {
			t.Fatalf("payload of %d bytes, protobuf reads %d", len(payload), len(ref.Data))
		}
	})
}
