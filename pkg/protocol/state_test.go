package protocol

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringtrain/ringtrain/pkg/model"
	pb "github.com/ringtrain/ringtrain/proto/ringtrain/v1"
)

// chunks returns the chunks SendState sends for params and opt.
func chunks(t *testing.T, params []float32, opt *model.Optimizer) []*pb.StateChunk {
	t.Helper()
	var out []*pb.StateChunk
	err := SendState(context.Background(), func(c *pb.StateChunk) error {
		c.Data = slices.Clone(c.Data) // SendState reuses its buffer
		out = append(out, c)
		return nil
	}, "run", nil, params, opt)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func receive(cs []*pb.StateChunk, np, no int) (*State, error) {
	i := 1
	return ReceiveState(cs[0], func() (*pb.StateChunk, error) {
		if i == len(cs) {
			return nil, io.EOF
		}
		i++
		return cs[i-1], nil
	}, np, no)
}

func TestReceiveState(t *testing.T) {
	// More values than one chunk holds, so the stream has several chunks
	// and one spans the end of the parameters.
	per := StateChunkBytes / 4
	params := make([]float32, per+10)
	for i := range params {
		params[i] = float32(i) / 7
	}
	opt := &model.Optimizer{Steps: 5, State: []float32{1, 2, 3}}
	good := chunks(t, params, opt)
	if len(good) != 2 {
		t.Fatalf("%d chunks, want 2", len(good))
	}
	st, err := receive(good, len(params), 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.Params, params) || !slices.Equal(st.Opt, opt.State) || st.Header.OptimizerSteps != 5 {
		t.Fatal("the received state differs from the sent one")
	}

	corrupt := func(f func(cs []*pb.StateChunk) []*pb.StateChunk) []*pb.StateChunk {
		cs := chunks(t, params, opt)
		return f(cs)
	}
	tests := []struct {
		name   string
		chunks []*pb.StateChunk
		np, no int
		want   error
	}{
		{"wrong parameter count", good, len(params) + 1, 3, ErrBadChunk},
		{"wrong optimizer count", good, len(params), 2, ErrBadChunk},
		{"no header", corrupt(func(cs []*pb.StateChunk) []*pb.StateChunk { cs[0].Header = nil; return cs }), len(params), 3, ErrBadChunk},
		{"missing chunk", good[:1], len(params), 3, ErrBadChunk},
		{"chunk out of place", corrupt(func(cs []*pb.StateChunk) []*pb.StateChunk { cs[1].Offset++; return cs }), len(params), 3, ErrBadChunk},
		{"odd byte count", corrupt(func(cs []*pb.StateChunk) []*pb.StateChunk { cs[1].Data = cs[1].Data[:5]; return cs }), len(params), 3, ErrBadChunk},
		{"chunk twice", corrupt(func(cs []*pb.StateChunk) []*pb.StateChunk { return append(cs, cs[1]) }), len(params), 3, ErrBadChunk},
		{"flipped bit", corrupt(func(cs []*pb.StateChunk) []*pb.StateChunk { cs[0].Data[100] ^= 1; return cs }), len(params), 3, ErrBadChecksum},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := receive(tc.chunks, tc.np, tc.no); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzReceiveState(f *testing.F) {
	f.Add(uint64(2), uint64(1), uint64(0), []byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64}, uint64(12), []byte{})
	f.Add(uint64(2), uint64(1), uint64(0), []byte{1, 2, 3}, uint64(3), []byte{9})
	f.Fuzz(func(t *testing.T, np, no, off uint64, data []byte, off2 uint64, data2 []byte) {
		if np > 1<<16 || no > 1<<16 {
			return
		}
		first := &pb.StateChunk{Header: &pb.StateHeader{ParamCount: np, OptimizerCount: no}, Offset: off, Data: data}
		cs := []*pb.StateChunk{first, {Offset: off2, Data: data2}}
		st, err := receive(cs, int(np), int(no))
		if err != nil {
			return
		}
		if len(st.Params) != int(np) || len(st.Opt) != int(no) || model.Checksum(st.Params) != st.Header.Checksum {
			t.Fatalf("accepted a state of %d+%d values for %d+%d", len(st.Params), len(st.Opt), np, no)
		}
	})
}

func TestReasons(t *testing.T) {
	tests := []struct {
		err  error
		want Reason
	}{
		{Errorf(codes.OutOfRange, ReasonNonFinite, "gradient[3] = NaN"), ReasonNonFinite},
		{fmt.Errorf("worker w1: %w", Errorf(codes.DataLoss, ReasonBadChecksum, "x")), ReasonBadChecksum},
		{status.Error(codes.DataLoss, "no detail"), ""},
		{errors.New("plain"), ""},
		{nil, ""},
	}
	for _, tc := range tests {
		if got := ReasonOf(tc.err); got != tc.want {
			t.Errorf("ReasonOf(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	if status.Code(Errorf(codes.OutOfRange, ReasonNonFinite, "x")) != codes.OutOfRange {
		t.Fatal("the code is lost")
	}
}

func TestChecks(t *testing.T) {
	if err := CheckVersion("w", Version); err != nil {
		t.Fatal(err)
	}
	if err := CheckVersion("w", Version+1); err == nil {
		t.Fatal("another version accepted")
	}
	cfg := model.Config{Inputs: 2, Hidden: []int{3}, Outputs: 1, Activation: model.ReLU, Output: model.Sigmoid, Loss: model.BCE, Bias: true, Init: model.He}
	if err := CheckModel("w", cfg, ""); err != nil {
		t.Fatal(err)
	}
	if err := CheckModel("w", cfg, cfg.String()); err != nil {
		t.Fatal(err)
	}
	other := cfg
	other.Hidden = []int{4}
	if err := CheckModel("w", cfg, other.String()); err == nil {
		t.Fatal("another model accepted")
	}
}
