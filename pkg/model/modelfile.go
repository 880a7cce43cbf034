package model

import (
	"fmt"
	"slices"

	"github.com/ringtrain/ringtrain/pkg/safetensors"
)

// Metadata keys written into a model file's __metadata__.
const (
	MetaFormat = "format"
	MetaConfig = "ringtrain.config"
)

// File returns the network's parameters as safetensors tensors
// layers.<i>.weight ([out, in]) and layers.<i>.bias ([out]), F32, with the
// network description in the metadata. The tensors alias the parameter
// buffer; extra metadata is merged in.
func (n *Network) File(extra map[string]string) *safetensors.File {
	f := &safetensors.File{Metadata: map[string]string{MetaFormat: "pt", MetaConfig: n.Config.String()}}
	for k, v := range extra {
		f.Metadata[k] = v
	}
	for i, l := range n.Layers {
		f.Tensors = append(f.Tensors, safetensors.Tensor{
			Name: fmt.Sprintf("layers.%d.weight", i), Shape: []int{l.Out, l.In}, Data: l.W,
		})
		if l.B != nil {
			f.Tensors = append(f.Tensors, safetensors.Tensor{
				Name: fmt.Sprintf("layers.%d.bias", i), Shape: []int{l.Out}, Data: l.B,
			})
		}
	}
	return f
}

// SaveFile writes the network to path atomically in the safetensors format.
func (n *Network) SaveFile(path string, extra map[string]string) error {
	if err := safetensors.WriteFile(path, n.File(extra)); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	return nil
}

// LoadFile replaces the network's parameters with those of a safetensors file
// written by SaveFile (or by PyTorch with the same tensor names). Nothing is
// changed unless every tensor is present with the right shape and finite
// values, and the file holds no tensor the network lacks.
func (n *Network) LoadFile(path string) error {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return fmt.Errorf("load model %s: %w", path, err)
	}
	if err := n.Load(f); err != nil {
		return fmt.Errorf("load model %s: %w", path, err)
	}
	return nil
}

// Load replaces the parameters with the tensors of f; see LoadFile.
func (n *Network) Load(f *safetensors.File) error {
	staged := make([]float32, len(n.Params))
	want := map[string]bool{}
	for i, l := range n.Layers {
		parts := []struct {
			name  string
			shape []int
			dst   []float32
		}{{fmt.Sprintf("layers.%d.weight", i), []int{l.Out, l.In}, l.W}}
		if l.B != nil {
			parts = append(parts, struct {
				name  string
				shape []int
				dst   []float32
			}{fmt.Sprintf("layers.%d.bias", i), []int{l.Out}, l.B})
		}
		for _, p := range parts {
			want[p.name] = true
			t, ok := f.Lookup(p.name)
			if !ok {
				return fmt.Errorf("tensor %s is missing (network: %s)", p.name, n.Config)
			}
			if !slices.Equal(t.Shape, p.shape) {
				return fmt.Errorf("tensor %s has shape %v, the network needs %v (network: %s)", p.name, t.Shape, p.shape, n.Config)
			}
			if err := CheckFinite(p.name, t.Data); err != nil {
				return err
			}
			off := offsetOf(n.Params, p.dst)
			copy(staged[off:off+len(p.dst)], t.Data)
		}
	}
	for _, t := range f.Tensors {
		if !want[t.Name] {
			return fmt.Errorf("tensor %s does not belong to the network (network: %s)", t.Name, n.Config)
		}
	}
	copy(n.Params, staged)
	return nil
}
