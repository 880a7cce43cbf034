// Command worker holds a model replica and trains the shards a coordinator
// sends it, summing gradients with the other workers around a ring. See
// README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ringtrain/ringtrain/pkg/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Worker(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}
