// Command worker holds a model replica and trains the shards a coordinator
// sends it, summing gradients with the other workers around a ring. See
// README.md.
package main

import (
	"context"
	"os"
	"syscall"

	"github.com/ringtrain/ringtrain/pkg/cli"
)

func main() {
	// SIGTERM or SIGINT: the worker leaves the cluster and exits 0; it holds
	// no state to resume (see cli.Worker).
	ctx, stop := cli.SignalContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var code int
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		code = cli.Healthcheck(ctx, "worker", os.Args[2:], "127.0.0.1:7071", os.Stderr)
	} else {
		code = cli.Worker(ctx, os.Args[1:], os.Stderr)
	}
	stop()
	os.Exit(code)
}
