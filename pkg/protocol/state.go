package protocol

import (
	"errors"
	"fmt"
	"io"

	"github.com/ringtrain/ringtrain/pkg/model"
	pb "github.com/ringtrain/ringtrain/proto/ringtrain/v1"
)

// ErrBadChecksum: a received state does not match the checksum in its header.
var ErrBadChecksum = errors.New("state checksum mismatch")

// ErrBadChunk: a state stream is malformed (no header, wrong counts, a
// chunk that does not fit, values missing).
var ErrBadChunk = errors.New("malformed state stream")

// State is a received state transfer, verified against its header.
type State struct {
	Header *pb.StateHeader
	Params []float32
	Opt    []float32 // the optimizer's state values
}

// ReceiveState reassembles a state stream whose first chunk is first (it
// carries the header) and whose next chunks come from recv until io.EOF. It
// checks that the header announces np parameters and no optimizer values,
// that every chunk lands exactly after the previous one, that nothing is
// missing, and the parameters' checksum. This is the one reassembly of a
// state, used by the worker (LoadState) and the coordinator (SaveState).
func ReceiveState(first *pb.StateChunk, recv func() (*pb.StateChunk, error), np, no int) (*State, error) {
	h := first.GetHeader()
	if h == nil {
		return nil, fmt.Errorf("%w: the first chunk has no header", ErrBadChunk)
	}
	if h.ParamCount != uint64(np) || h.OptimizerCount != uint64(no) {
		return nil, fmt.Errorf("%w: %d params + %d optimizer values, the model needs %d + %d", ErrBadChunk, h.ParamCount, h.OptimizerCount, np, no)
	}
	all := make([]float32, np+no)
	next := uint64(0)
	for chunk := first; ; {
		n := uint64(len(chunk.Data) / 4)
		if len(chunk.Data)%4 != 0 || chunk.Offset != next || next+n > uint64(len(all)) {
			return nil, fmt.Errorf("%w: chunk at offset %d with %d bytes does not fit (expected offset %d of %d values)", ErrBadChunk, chunk.Offset, len(chunk.Data), next, len(all))
		}
		Floats(all[next:next+n], chunk.Data)
		next += n
		var err error
		chunk, err = recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("receive state: %w", err)
		}
	}
	if next != uint64(len(all)) {
		return nil, fmt.Errorf("%w: got %d of %d values", ErrBadChunk, next, len(all))
	}
	if sum := model.Checksum(all[:np]); sum != h.Checksum {
		return nil, fmt.Errorf("%w: checksum %08x, header says %08x", ErrBadChecksum, sum, h.Checksum)
	}
	return &State{Header: h, Params: all[:np:np], Opt: all[np:]}, nil
}

// CheckModel is the one expected-model check: expect is a canonical model
// configuration (model.Config.String) a worker was started for, "" for any.
// The error names the differences.
func CheckModel(who string, run model.Config, expect string) error {
	if want := run.String(); expect != "" && expect != want {
		return fmt.Errorf("%s was started for another model: %s", who, model.DiffStrings(want, expect))
	}
	return nil
}
