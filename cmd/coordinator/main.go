// Command coordinator runs a training job: it owns the data, the schedule,
// the membership and the results, and drives workers (in this process with
// --local-workers, or joined over the network). See README.md.
package main

import (
	"context"
	"os"
	"syscall"

	"github.com/ringtrain/ringtrain/pkg/cli"
	"github.com/ringtrain/ringtrain/pkg/cli/coordcli"
	"github.com/ringtrain/ringtrain/pkg/tlsutil"
)

func main() {
	// The context's cause records the signal, so that an interrupted run
	// exits 128+signal (130, 143) rather than 1; see cli.Interrupted.
	ctx, stop := cli.SignalContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var code int
	switch {
	case len(os.Args) > 1 && os.Args[1] == "healthcheck":
		code = cli.Healthcheck(ctx, "coordinator", os.Args[2:], "127.0.0.1:7070", os.Stderr)
	case len(os.Args) > 1 && os.Args[1] == "predict":
		code = coordcli.Predict(os.Args[2:], os.Stdout, os.Stderr)
	case len(os.Args) > 1 && os.Args[1] == "eval":
		code = coordcli.Eval(os.Args[2:], os.Stdout, os.Stderr)
	case len(os.Args) > 1 && os.Args[1] == "gen-certs":
		code = tlsutil.GenCertsMain(os.Args[2:], os.Stderr)
	default:
		code = coordcli.Coordinator(ctx, os.Args[1:], os.Stderr)
	}
	stop()
	os.Exit(code)
}
