package model

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestParseConfigRoundTrip(t *testing.T) {
	for _, c := range []Config{
		{Inputs: 784, Hidden: []int{1000, 1000}, Outputs: 1, Activation: ReLU, Output: Sigmoid, Loss: BCE, Bias: true, Init: He},
		{Inputs: 2, Hidden: nil, Outputs: 3, Activation: Tanh, Output: Softmax, Loss: CrossEntropy, Bias: false, Init: Xavier},
	} {
		got, err := ParseConfig(c.String())
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != c.String() {
			t.Fatalf("round trip: %s -> %s", c, got)
		}
	}
	for _, bad := range []struct{ in, want string }{
		{"", "layers is missing"},
		{"layers=2-1 activation=relu output=sigmoid loss=bce bias=true", "init is missing"},
		{"layers=2 activation=relu output=sigmoid loss=bce bias=true init=he", "input and an output"},
		{"layers=2-x-1 activation=relu output=sigmoid loss=bce bias=true init=he", "not a positive integer"},
		{"layers=2-1 activation=wobble output=sigmoid loss=bce bias=true init=he", "activation"},
		{"layers=2-1 activation=relu output=sigmoid loss=bce bias=maybe init=he", "bias"},
		{"layers=2-1 layers=2-1 activation=relu output=sigmoid loss=bce bias=true init=he", "twice"},
		{"layers=2-1 color=red activation=relu output=sigmoid loss=bce bias=true init=he", "unknown key"},
	} {
		if _, err := ParseConfig(bad.in); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseConfig(%q) = %v, want an error with %q", bad.in, err, bad.want)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add("layers=784-1000-1 activation=relu output=sigmoid loss=bce bias=true init=he")
	f.Add("layers=2-3 activation=tanh output=softmax loss=ce bias=false init=xavier")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConfig(s)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted an invalid config %q: %v", s, err)
		}
		if c.NumParams() > 1<<24 {
			return
		}
		if again, err := ParseConfig(c.String()); err != nil || again.String() != c.String() {
			t.Fatalf("%q does not round-trip: %v", s, err)
		}
	})
}

func TestOpenFileAndPredict(t *testing.T) {
	cfg := Config{Inputs: 2, Hidden: []int{3}, Outputs: 1, Activation: Tanh, Output: Sigmoid, Loss: BCE, Bias: true, Init: Xavier}
	net, err := New(cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := net.SaveFile(path, nil); err != nil {
		t.Fatal(err)
	}
	back, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Config.String() != cfg.String() {
		t.Fatalf("config %s, want %s", back.Config, cfg)
	}
	x := []float32{0.5, -1, 2, 0.25}
	c1, o1 := net.Predict(x, 2)
	o1 = append([]float32(nil), o1...)
	c2, o2 := back.Predict(x, 2)
	for i := range c1 {
		if c1[i] != c2[i] || o1[i] != o2[i] {
			t.Fatalf("row %d: %d %g vs %d %g", i, c1[i], o1[i], c2[i], o2[i])
		}
		if want := int32(0); o1[i] > 0.5 {
			want = 1
			if c1[i] != want {
				t.Fatalf("row %d: class %d for output %g", i, c1[i], o1[i])
			}
		}
	}
	if cfg.Classes() != 2 {
		t.Fatal("one sigmoid unit separates two classes")
	}
}
