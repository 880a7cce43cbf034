package report

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ringtrain/ringtrain/pkg/atomicfile"
)

// writeFileAtomic creates path's directory if missing and writes path
// atomically (see pkg/atomicfile).
func writeFileAtomic(path string, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create directory %s: %w", filepath.Dir(path), err)
	}
	return atomicfile.Write(path, write)
}
