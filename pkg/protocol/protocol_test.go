package protocol

import (
	"math"
	"strings"
	"testing"

	"github.com/ringtrain/ringtrain/pkg/data"
	"github.com/ringtrain/ringtrain/pkg/model"
	pb "github.com/ringtrain/ringtrain/proto/ringtrain/v1"
)

func TestShardRoundTrip(t *testing.T) {
	bytesSet := &data.Dataset{Name: "b", Features: 2, Classes: 2, Pixels: []uint8{0, 255, 10, 20, 30, 40}, Labels: []int32{0, 1, 1}}
	floatSet := &data.Dataset{Name: "f", Features: 2, Classes: 3, Values: []float32{0.5, -1, 2, 3, 4, 5}, Labels: []int32{2, 0, 1}}
	for _, ds := range []*data.Dataset{bytesSet, floatSet} {
		s := EncodeShard(ds, []int{2, 0})
		got, err := DecodeShard(s, ds.Features, ds.Classes)
		if err != nil {
			t.Fatal(err)
		}
		a, b := make([]float32, 2), make([]float32, 2)
		for i, r := range []int{2, 0} {
			ds.Row(r, a)
			got.Row(i, b)
			if a[0] != b[0] || a[1] != b[1] || got.Labels[i] != ds.Labels[r] {
				t.Fatalf("%s row %d: got %v label %d, want %v label %d", ds.Name, i, b, got.Labels[i], a, ds.Labels[r])
			}
		}
	}
}

func TestDecodeShardRejectsBadShards(t *testing.T) {
	nan := make([]byte, 8)
	PutFloats(nan, []float32{1, float32(math.NaN())})
	tests := []struct {
		name  string
		shard *pb.Shard
		want  string
	}{
		{"missing", nil, "shard is missing"},
		{"wrong features", &pb.Shard{Rows: 1, Features: 3, Pixels: []byte{1, 2, 3}, Labels: []int32{0}}, "3 features, the model takes 2"},
		{"labels count", &pb.Shard{Rows: 2, Features: 2, Pixels: []byte{1, 2, 3, 4}, Labels: []int32{0}}, "2 rows but 1 labels"},
		{"short pixels", &pb.Shard{Rows: 2, Features: 2, Pixels: []byte{1, 2, 3}, Labels: []int32{0, 1}}, "3 pixel bytes, want 2 rows x 2"},
		{"short values", &pb.Shard{Rows: 1, Features: 2, Values: []byte{1, 2, 3}, Labels: []int32{0}}, "3 value bytes"},
		{"both", &pb.Shard{Rows: 1, Features: 2, Pixels: []byte{1, 2}, Values: make([]byte, 8), Labels: []int32{0}}, "exactly one of pixels and values"},
		{"label range", &pb.Shard{Rows: 1, Features: 2, Pixels: []byte{1, 2}, Labels: []int32{2}}, "label 2, want 0..1"},
		{"negative label", &pb.Shard{Rows: 1, Features: 2, Pixels: []byte{1, 2}, Labels: []int32{-1}}, "label -1"},
		{"nan", &pb.Shard{Rows: 1, Features: 2, Values: nan, Labels: []int32{0}}, "NaN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeShard(tc.shard, 2, 2)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// FuzzDecodeShard feeds arbitrary shards (as they arrive from the network)
// to the decoder: it must never panic, and anything it accepts must be a
// consistent data set.
func FuzzDecodeShard(f *testing.F) {
	f.Add(uint32(1), uint32(2), []byte{1, 2}, []byte(nil), []byte{0, 0, 0, 0})
	f.Add(uint32(1), uint32(2), []byte(nil), make([]byte, 8), []byte{1, 0, 0, 0})
	f.Add(uint32(1<<31), uint32(2), []byte{1}, []byte(nil), []byte(nil))
	f.Fuzz(func(t *testing.T, rows, features uint32, pixels, values, labelBytes []byte) {
		labels := make([]int32, len(labelBytes)/4)
		for i := range labels {
			labels[i] = int32(uint32(labelBytes[4*i]) | uint32(labelBytes[4*i+1])<<8 | uint32(labelBytes[4*i+2])<<16 | uint32(labelBytes[4*i+3])<<24)
		}
		s := &pb.Shard{Rows: rows, Features: features, Pixels: pixels, Values: values, Labels: labels}
		ds, err := DecodeShard(s, 2, 2)
		if err != nil {
			return
		}
		if err := ds.Validate(); err != nil && ds.Rows() > 0 {
			t.Fatalf("accepted an invalid shard: %v", err)
		}
	})
}

func TestSpecsRoundTrip(t *testing.T) {
	c := model.Config{Inputs: 784, Hidden: []int{1000, 10}, Outputs: 3, Activation: model.LeakyReLU, Output: model.Softmax, Loss: model.CrossEntropy, Bias: true, Init: model.Xavier}
	got, err := ModelConfig(ModelSpec(c))
	if err != nil || got.String() != c.String() {
		t.Fatalf("model spec round trip: %v, %v", got, err)
	}
	o := model.OptimizerConfig{Kind: model.Adam, LR: 0.01}.WithDefaults()
	og, err := OptimizerConfig(OptimizerSpec(o))
	if err != nil || og != o {
		t.Fatalf("optimizer spec round trip: %+v, %v", og, err)
	}
	if _, err := ModelConfig(&pb.ModelSpec{Inputs: 2, Outputs: 1, Activation: "relu", Output: "tanh", Loss: "bce", Init: "he"}); err == nil {
		t.Fatal("an invalid model spec was accepted")
	}
}
