package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestWorkerRejectsInvalidFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "--join: is required"},
		{[]string{"--join", "nohost"}, `--join: "nohost" is not host:port`},
		{[]string{"--join", "a:1", "--grpc-addr", "x"}, "--grpc-addr"},
		{[]string{"--join", "a:1", "--advertise", "y"}, "--advertise"},
	}
	for _, tc := range tests {
		var stderr bytes.Buffer
		if code := Worker(context.Background(), tc.args, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// TestSingleProcessTrainingWritesOutputs runs the lecture's exercise network
// on the Gaussian data in-process and checks every output file.
