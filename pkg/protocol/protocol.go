// Package protocol holds what the coordinator and the workers must agree on:
// the protocol version, and the conversions between the engine's types and
// the control-plane messages (model and optimizer specs, batch shards, state
// transfers as raw little-endian float32 chunks).
package protocol

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/model"
	pb "github.com/ringtrain/ringtrain/proto/ringtrain/v1"
)

// Version is the control and ring protocol version. Members with another
// version are refused at join. Version 2: errors carry an ErrorInfo reason
// (errors.go), and a worker whose shard is non-finite still all-reduces.
// Version 3: exact reduction (JobSpec.exact_*: shards of whole blocks, an
// int64 ring); a version-2 worker would sum float32 where the others sum
// int64, so it is refused.
const Version uint32 = 3

// StateChunkBytes is the payload size of one state-transfer chunk.
const StateChunkBytes = 1 << 20

// MaxMessageBytes bounds every control-plane message a server accepts. A step
// shard larger than this (a huge full batch) is refused with a clear error.
const MaxMessageBytes = 64 << 20

// MinFrameBytes is the smallest ring frame size a run may choose.
const MinFrameBytes = 1 << 10

// MaxFrameBytes is the largest ring frame a worker accepts (the frame size
// in use is the coordinator's choice, at most this).
const MaxFrameBytes = 4 << 20

// ModelSpec converts a model configuration to its message.
func ModelSpec(c model.Config) *pb.ModelSpec {
	hidden := make([]uint32, len(c.Hidden))
	for i, h := range c.Hidden {
		hidden[i] = uint32(h)
	}
	return &pb.ModelSpec{
		Inputs: uint32(c.Inputs), Hidden: hidden, Outputs: uint32(c.Outputs),
		Activation: c.Activation.String(), Output: c.Output.String(), Loss: c.Loss.String(),
		Bias: c.Bias, Init: c.Init.String(),
	}
}

// ModelConfig converts a message back to a validated model configuration.
func ModelConfig(s *pb.ModelSpec) (model.Config, error) {
	if s == nil {
		return model.Config{}, fmt.Errorf("model spec is missing")
	}
	act, err := model.ParseActivation(s.Activation)
	if err != nil {
		return model.Config{}, err
	}
	out, err := model.ParseActivation(s.Output)
	if err != nil {
		return model.Config{}, err
	}
	loss, err := model.ParseLoss(s.Loss)
	if err != nil {
		return model.Config{}, err
	}
	init, err := model.ParseInit(s.Init)
	if err != nil {
		return model.Config{}, err
	}
	hidden := make([]int, len(s.Hidden))
	for i, h := range s.Hidden {
		hidden[i] = int(h)
	}
	c := model.Config{Inputs: int(s.Inputs), Hidden: hidden, Outputs: int(s.Outputs), Activation: act, Output: out, Loss: loss, Bias: s.Bias, Init: init}
	if err := c.Validate(); err != nil {
		return model.Config{}, err
	}
	return c, nil
}

// OptimizerSpec converts an optimizer configuration to its message.
func OptimizerSpec(c model.OptimizerConfig) *pb.OptimizerSpec {
	return &pb.OptimizerSpec{Kind: c.Kind.String(), Lr: c.LR, Momentum: c.Momentum, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps,
		WeightDecay: c.WeightDecay, Nesterov: c.Nesterov}
}

// OptimizerConfig converts a message back to a validated optimizer configuration.
func OptimizerConfig(s *pb.OptimizerSpec) (model.OptimizerConfig, error) {
	if s == nil {
		return model.OptimizerConfig{}, fmt.Errorf("optimizer spec is missing")
	}
	kind, err := model.ParseOptimizer(s.Kind)
	if err != nil {
		return model.OptimizerConfig{}, err
	}
	c := model.OptimizerConfig{Kind: kind, LR: s.Lr, Momentum: s.Momentum, Beta1: s.Beta1, Beta2: s.Beta2, Eps: s.Eps,
		WeightDecay: s.WeightDecay, Nesterov: s.Nesterov}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// EncodeShard packs the rows idx of ds into a Shard message, keeping bytes
// as bytes.
func EncodeShard(ds *data.Dataset, idx []int) *pb.Shard {
	f := ds.Features
	s := &pb.Shard{Rows: uint32(len(idx)), Features: uint32(f), Labels: make([]int32, len(idx))}
	if ds.Pixels != nil {
		s.Pixels = make([]byte, len(idx)*f)
		for i, r := range idx {
			copy(s.Pixels[i*f:(i+1)*f], ds.Pixels[r*f:(r+1)*f])
		}
	} else {
		s.Values = make([]byte, 4*len(idx)*f)
		for i, r := range idx {
			PutFloats(s.Values[4*i*f:4*(i+1)*f], ds.Values[r*f:(r+1)*f])
		}
	}
	for i, r := range idx {
		s.Labels[i] = ds.Labels[r]
	}
	return s
}

// DecodeShard validates a Shard against the expected feature count and class
// count and returns it as a Dataset (sharing the message's pixel bytes).
func DecodeShard(s *pb.Shard, features, classes int) (*data.Dataset, error) {
	if s == nil {
		return nil, fmt.Errorf("shard is missing")
	}
	rows, f := int(s.Rows), int(s.Features)
	if f != features {
		return nil, fmt.Errorf("shard has %d features, the model takes %d", f, features)
	}
	if len(s.Labels) != rows {
		return nil, fmt.Errorf("shard has %d rows but %d labels", rows, len(s.Labels))
	}
	ds := &data.Dataset{Name: "shard", Features: f, Classes: classes, Labels: s.Labels}
	switch {
	case s.Pixels != nil && s.Values == nil:
		if len(s.Pixels) != rows*f {
			return nil, fmt.Errorf("shard has %d pixel bytes, want %d rows x %d", len(s.Pixels), rows, f)
		}
		ds.Pixels = s.Pixels
	case s.Values != nil && s.Pixels == nil:
		if len(s.Values) != 4*rows*f {
			return nil, fmt.Errorf("shard has %d value bytes, want 4 x %d rows x %d", len(s.Values), rows, f)
		}
		ds.Values = make([]float32, rows*f)
		Floats(ds.Values, s.Values)
	case rows == 0:
		ds.Values = []float32{}
	default:
		return nil, fmt.Errorf("shard must carry exactly one of pixels and values")
	}
	for i, y := range s.Labels {
		if y < 0 || int(y) >= classes {
			return nil, fmt.Errorf("shard row %d has label %d, want 0..%d", i, y, classes-1)
		}
	}
	if ds.Values != nil {
		if err := model.CheckFinite("shard values", ds.Values); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// PutFloats writes src as little-endian float32 into dst (len 4*len(src)).
func PutFloats(dst []byte, src []float32) {
	for i, v := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
}

// Floats reads little-endian float32 values from src into dst.
func Floats(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

// SendState streams params and optimizer state as StateChunks through send.
func SendState(ctx context.Context, send func(*pb.StateChunk) error, runID string, job *pb.JobSpec, params []float32, opt *model.Optimizer) error {
	all := len(params) + len(opt.State)
	h := &pb.StateHeader{
		RunId: runID, Job: job, OptimizerSteps: uint64(opt.Steps),
		ParamCount: uint64(len(params)), OptimizerCount: uint64(len(opt.State)), Checksum: model.Checksum(params),
	}
	per := StateChunkBytes / 4
	buf := make([]byte, StateChunkBytes)
	for off := 0; off < all || off == 0; off += per {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(off+per, all)
		c := &pb.StateChunk{Offset: uint64(off)}
		if off == 0 {
			c.Header = h
		}
		n := end - off
		data := buf[:4*n]
		// The chunk may span the end of params and the start of the optimizer state.
		for i := off; i < end; {
			var src []float32
			if i < len(params) {
				src = params[i:min(end, len(params))]
			} else {
				src = opt.State[i-len(params) : end-len(params)]
			}
			PutFloats(data[4*(i-off):], src)
			i += len(src)
		}
		c.Data = data
		if err := send(c); err != nil {
			return fmt.Errorf("send state chunk at %d: %w", off, err)
		}
		if all == 0 {
			break
		}
	}
	return nil
}
