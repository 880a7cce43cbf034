package model

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ringtrain/ringtrain/pkg/safetensors"
)

// ParseConfig reads the canonical description Config.String writes (the
// model file's "ringtrain.config" metadata).
func ParseConfig(s string) (Config, error) {
	var c Config
	seen := map[string]bool{}
	for _, field := range strings.Fields(s) {
		key, val, ok := strings.Cut(field, "=")
		if !ok {
			return Config{}, fmt.Errorf("model config %q: %q is not key=value", s, field)
		}
		if seen[key] {
			return Config{}, fmt.Errorf("model config %q: %s given twice", s, key)
		}
		seen[key] = true
		var err error
		switch key {
		case "layers":
			var ws []int
			for _, p := range strings.Split(val, "-") {
				w, perr := strconv.Atoi(p)
				if perr != nil || w <= 0 {
					return Config{}, fmt.Errorf("model config %q: layer width %q is not a positive integer", s, p)
				}
				ws = append(ws, w)
			}
			if len(ws) < 2 {
				return Config{}, fmt.Errorf("model config %q: layers needs an input and an output width", s)
			}
			c.Inputs, c.Hidden, c.Outputs = ws[0], ws[1:len(ws)-1], ws[len(ws)-1]
		case "activation":
			c.Activation, err = ParseActivation(val)
		case "output":
			c.Output, err = ParseActivation(val)
		case "loss":
			c.Loss, err = ParseLoss(val)
		case "bias":
			c.Bias, err = strconv.ParseBool(val)
		case "init":
			c.Init, err = ParseInit(val)
		default:
			return Config{}, fmt.Errorf("model config %q: unknown key %q", s, key)
		}
		if err != nil {
			return Config{}, fmt.Errorf("model config %q: %s: %w", s, key, err)
		}
	}
	for _, k := range []string{"layers", "activation", "output", "loss", "bias", "init"} {
		if !seen[k] {
			return Config{}, fmt.Errorf("model config %q: %s is missing", s, k)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("model config %q: %w", s, err)
	}
	return c, nil
}

// OpenFile reads a model file written by SaveFile: the network is built from
// the file's "ringtrain.config" metadata and its parameters loaded.
func OpenFile(path string) (*Network, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("open model %s: %w", path, err)
	}
	desc, ok := f.Metadata[MetaConfig]
	if !ok {
		return nil, fmt.Errorf("open model %s: no %q in its metadata: not written by ringtrain", path, MetaConfig)
	}
	cfg, err := ParseConfig(desc)
	if err != nil {
		return nil, fmt.Errorf("open model %s: %w", path, err)
	}
	net, err := New(cfg, 0)
	if err != nil {
		return nil, fmt.Errorf("open model %s: %w", path, err)
	}
	if err := net.Load(f); err != nil {
		return nil, fmt.Errorf("open model %s: %w", path, err)
	}
	return net, nil
}

// Classes returns how many classes the network tells apart (a single output
// unit separates two).
func (c Config) Classes() int {
	if c.Outputs == 1 {
		return 2
	}
	return c.Outputs
}

// Predict runs the network on rows inputs (x is rows x Inputs) and returns
// each row's predicted class and its output row (rows x Outputs; owned by
// the network until its next forward pass).
func (n *Network) Predict(x []float32, rows int) (classes []int32, out []float32) {
	out = n.Forward(x, rows)
	k := n.Config.Outputs
	classes = make([]int32, rows)
	for r := range rows {
		classes[r] = n.Config.Loss.predict(out[r*k : (r+1)*k])
	}
	return classes, out
}
