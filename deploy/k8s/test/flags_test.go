package k8stest

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/ringtrain/ringtrain/pkg/cli"
	"github.com/ringtrain/ringtrain/pkg/cli/coordcli"
)

// coordinatorRun is a parsed and validated coordinator command line.
type coordinatorRun struct{ opts coordcli.CoordinatorOptions }

// workerRun is a parsed and validated worker command line.
type workerRun struct {
	opts     cli.WorkerOptions
	replicas int32
}

// parseFlags parses args with the flag set of the binary at path, exactly as
// the binary does (coordcli.CoordinatorFlags / cli.WorkerFlags), and validates the
// result. An unknown flag, a stray argument or an invalid value is an error.
func parseFlags(binary string, args []string) (any, error) {
	var stderr bytes.Buffer
	switch binary {
	case coordinatorBinary:
		opts := coordcli.DefaultCoordinatorOptions()
		fs := coordcli.CoordinatorFlags(&opts, &stderr)
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("coordinator flags %q: %w", args, err)
		}
		if fs.NArg() > 0 {
			return nil, fmt.Errorf("coordinator: stray argument %q", fs.Arg(0))
		}
		if err := opts.Validate(); err != nil {
			return nil, fmt.Errorf("coordinator flags: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
		return &coordinatorRun{opts: opts}, nil
	case workerBinary:
		opts := cli.DefaultWorkerOptions()
		fs := cli.WorkerFlags(&opts, &stderr)
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("worker flags %q: %w", args, err)
		}
		if fs.NArg() > 0 {
			return nil, fmt.Errorf("worker: stray argument %q", fs.Arg(0))
		}
		if err := opts.Validate(); err != nil {
			return nil, fmt.Errorf("worker flags: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
		return &workerRun{opts: opts}, nil
	}
	return nil, fmt.Errorf("command %q is neither %s nor %s", binary, coordinatorBinary, workerBinary)
}
