package grpcring

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// Wire field numbers of ringtrain.v1.RingFrame (proto/ringtrain/v1/ring.proto).
const (
	fieldGeneration = 1
	fieldStep       = 2
	fieldRound      = 3
	fieldSeq        = 4
	fieldOffset     = 5
	fieldData       = 6
)

const (
	// maxHeaderBytes bounds the encoding of a RingFrame without its payload:
	// five varint fields (at most 11 bytes each with the tag) and the payload's
	// tag and length.
	maxHeaderBytes = 5*11 + 1 + 10
	// minViewBytes is the smallest payload sent as a view of the caller's buffer;
	// smaller ones are copied behind the header (waiting for gRPC to release a
	// view costs more than copying a few KiB, and gRPC does not reference-count
	// buffers under 1 KiB).
	minViewBytes = 4 << 10
)

// outFrame is a RingFrame to send. Its payload is a view of the all-reduce
// buffer: the codec hands it to gRPC without copying and release reports when
// gRPC has written it out and dropped its last reference.
type outFrame struct {
	generation, step uint64
	round, seq       uint32
	offset           uint64
	data             []byte
	// release, if non-nil, is told when gRPC no longer references data; the
	// codec sets viewed when it passed data by reference.
	release *releaser
	viewed  bool
}

// inFrame is a received RingFrame whose payload stays in gRPC's receive
// buffers: parts are views into bufs, which hold one reference each until
// free is called.
type inFrame struct {
	generation, step uint64
	round, seq       uint32
	offset           uint64
	parts            [][]byte
	n                int // payload bytes
	bufs             mem.BufferSlice
	views            [][]byte // scratch: the unread remainder of each buffer while decoding
}

// free drops the references to gRPC's receive buffers; parts are invalid afterwards.
func (f *inFrame) free() {
	f.bufs.Free()
	clear(f.bufs)
	f.bufs = f.bufs[:0]
	clear(f.parts)
	f.parts = f.parts[:0]
	f.n = 0
}

// releaser is the mem.BufferPool of payload views: gRPC "returns" a view to it
// once the view's last reference is dropped, which is how Transport.Send
// learns that gRPC has copied the payload into its write buffer.
type releaser struct {
	ch chan *[]byte
}

func newReleaser() *releaser { return &releaser{ch: make(chan *[]byte, 1)} }

// Get is never called for views (gRPC only calls Put on a view's pool); it
// allocates, to satisfy mem.BufferPool.
func (r *releaser) Get(n int) *[]byte {
	b := make([]byte, n)
	return &b
}

// Put reports that gRPC released the view b. It never blocks: a release that
// nobody waits for any more (its Send gave up) is dropped.
func (r *releaser) Put(b *[]byte) {
	select {
	case r.ch <- b:
	default:
	}
}

// codec is a gRPC CodecV2 for the ring. It encodes an *outFrame as a standard
// RingFrame message whose payload is not copied (a pooled header buffer
// followed by a view of the caller's floats), decodes a RingFrame into an
// *inFrame whose payload is not copied either (views into gRPC's receive
// buffers, which it keeps referenced), and delegates every other message to
// gRPC's standard proto codec. The wire format is standard protobuf (Name is
// "proto"): peers using the generated code with the standard codec interoperate.
//
// Why: gRPC's proto codec marshals into a zeroed pooled buffer and unmarshals
// by flattening the received chunks into another zeroed buffer and copying the
// payload again into a new slice. On loopback those copies and the zeroing were
// about half the CPU time of an all-reduce.
type codec struct {
	bufs  *dirtyPool       // headers and small frames, released by gRPC once written
	proto encoding.CodecV2 // everything that is not a ring frame
}

func newCodec() *codec {
	return &codec{bufs: newDirtyPool(), proto: encoding.GetCodecV2(protocodec.Name)}
}

// Name is the content-subtype; the standard proto one, since the bytes are the same.
func (c *codec) Name() string { return protocodec.Name }

// Marshal encodes an *outFrame (see the type), and anything else with the proto codec.
func (c *codec) Marshal(v any) (mem.BufferSlice, error) {
	f, ok := v.(*outFrame)
	if !ok {
		return c.proto.Marshal(v)
	}
	view := f.release != nil && len(f.data) >= minViewBytes
	size := maxHeaderBytes
	if !view {
		size += len(f.data)
	}
	buf := c.bufs.Get(size)
	b := appendHeader((*buf)[:0], f)
	if !view {
		*buf = append(b, f.data...)
		f.viewed = false
		return mem.BufferSlice{mem.NewBuffer(buf, c.bufs)}, nil
	}
	*buf = b
	data := f.data
	f.viewed = true
	return mem.BufferSlice{mem.NewBuffer(buf, c.bufs), mem.NewBuffer(&data, f.release)}, nil
}

// appendHeader appends the RingFrame encoding of f's header fields and its
// payload's tag and length, in field order; zero fields are omitted, as proto3 does.
func appendHeader(b []byte, f *outFrame) []byte {
	for _, fv := range [...]struct {
		num protowire.Number
		v   uint64
	}{
		{fieldGeneration, f.generation}, {fieldStep, f.step}, {fieldRound, uint64(f.round)},
		{fieldSeq, uint64(f.seq)}, {fieldOffset, f.offset},
	} {
		if fv.v != 0 {
			b = protowire.AppendTag(b, fv.num, protowire.VarintType)
			b = protowire.AppendVarint(b, fv.v)
		}
	}
	if len(f.data) > 0 {
		b = protowire.AppendTag(b, fieldData, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(len(f.data)))
	}
	return b
}

// Unmarshal decodes a RingFrame into an *inFrame (taking a reference to data's
// buffers when the payload is not empty), and anything else with the proto
// codec. Unknown fields are skipped; a repeated payload field replaces the
// earlier one, as in protobuf.
func (c *codec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*inFrame)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	f.free()
	*f = inFrame{parts: f.parts, bufs: f.bufs, views: f.views[:0]}
	for _, b := range data {
		if d := b.ReadOnlyData(); len(d) > 0 {
			f.views = append(f.views, d)
		}
	}
	cur := cursor{bufs: f.views}
	for !cur.empty() {
		at := cur.pos
		tag, err := cur.uvarint()
		if err != nil {
			return fmt.Errorf("grpcring: unmarshal ring frame: tag at byte %d: %w", at, err)
		}
		num, typ := protowire.Number(tag>>3), protowire.Type(tag&7)
		if tag>>3 < 1 || tag>>3 > uint64(protowire.MaxValidNumber) {
			return fmt.Errorf("grpcring: unmarshal ring frame: invalid field number %d at byte %d", tag>>3, at)
		}
		switch typ {
		case protowire.VarintType:
			x, err := cur.uvarint()
			if err != nil {
				return fmt.Errorf("grpcring: unmarshal ring frame: field %d at byte %d: %w", num, at, err)
			}
			switch num {
			case fieldGeneration:
				f.generation = x
			case fieldStep:
				f.step = x
			case fieldRound:
				f.round = uint32(x)
			case fieldSeq:
				f.seq = uint32(x)
			case fieldOffset:
				f.offset = x
			}
		case protowire.BytesType:
			n, err := cur.uvarint()
			if err == nil && n > uint64(cur.remaining()) {
				err = fmt.Errorf("length %d with %d bytes left", n, cur.remaining())
			}
			if err != nil {
				return fmt.Errorf("grpcring: unmarshal ring frame: field %d at byte %d: %w", num, at, err)
			}
			if num != fieldData {
				cur.skip(int(n))
				continue
			}
			clear(f.parts)
			f.parts = cur.take(int(n), f.parts[:0])
			f.n = int(n)
		case protowire.Fixed32Type, protowire.Fixed64Type:
			n := 4
			if typ == protowire.Fixed64Type {
				n = 8
			}
			if cur.remaining() < n {
				return fmt.Errorf("grpcring: unmarshal ring frame: field %d at byte %d: %d bytes left, want %d", num, at, cur.remaining(), n)
			}
			cur.skip(n)
		default:
			return fmt.Errorf("grpcring: unmarshal ring frame: field %d at byte %d has unsupported wire type %d", num, at, typ)
		}
	}
	if f.n > 0 {
		data.Ref()
		f.bufs = append(f.bufs[:0], data...)
	}
	clear(f.views)
	return nil
}

// cursor reads a message spread over several buffers (gRPC's receive chunks).
type cursor struct {
	bufs [][]byte // unread bytes; bufs[0] is current, empty ones are dropped
	pos  int      // bytes consumed, for error messages
}

func (c *cursor) empty() bool {
	for len(c.bufs) > 0 && len(c.bufs[0]) == 0 {
		c.bufs = c.bufs[1:]
	}
	return len(c.bufs) == 0
}

func (c *cursor) remaining() int {
	n := 0
	for _, b := range c.bufs {
		n += len(b)
	}
	return n
}

// uvarint reads a base-128 varint that may straddle buffers.
func (c *cursor) uvarint() (uint64, error) {
	if len(c.bufs) > 0 {
		// Fast path: the whole varint lies in the current buffer.
		if x, n := protowire.ConsumeVarint(c.bufs[0]); n > 0 {
			c.bufs[0] = c.bufs[0][n:]
			c.pos += n
			return x, nil
		}
	}
	var x uint64
	for i := 0; i < 10; i++ {
		if c.empty() {
			return 0, fmt.Errorf("varint truncated after %d bytes", i)
		}
		b := c.bufs[0][0]
		c.bufs[0] = c.bufs[0][1:]
		c.pos++
		if i == 9 && b > 1 {
			return 0, fmt.Errorf("varint overflows 64 bits")
		}
		x |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return x, nil
		}
	}
	return 0, fmt.Errorf("varint overflows 64 bits")
}

// skip consumes n bytes; the caller checked that they are there.
func (c *cursor) skip(n int) {
	c.pos += n
	for n > 0 {
		k := min(n, len(c.bufs[0]))
		c.bufs[0] = c.bufs[0][k:]
		n -= k
		if len(c.bufs[0]) == 0 {
			c.bufs = c.bufs[1:]
		}
	}
}

// take consumes n bytes, appending views of them (no copy) to parts.
func (c *cursor) take(n int, parts [][]byte) [][]byte {
	c.pos += n
	for n > 0 {
		k := min(n, len(c.bufs[0]))
		if k > 0 {
			parts = append(parts, c.bufs[0][:k])
		}
		c.bufs[0] = c.bufs[0][k:]
		n -= k
		if len(c.bufs[0]) == 0 {
			c.bufs = c.bufs[1:]
		}
	}
	return parts
}
