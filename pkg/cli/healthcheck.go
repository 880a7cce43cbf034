package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ringtrain/ringtrain/pkg/tlsutil"
)

// Healthcheck runs the "healthcheck" subcommand: it asks the gRPC health
// service (grpc.health.v1) at --addr and returns 0 when it answers SERVING,
// 1 otherwise. Images have no shell, so container health checks run the
// binary itself.
func Healthcheck(ctx context.Context, name string, args []string, defaultAddr string, stderr io.Writer) int {
	fs := flag.NewFlagSet(name+" healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", defaultAddr, "gRPC address to check")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	service := fs.String("service", "", "health service name (empty: the server as a whole)")
	var tc tlsutil.Config
	tc.Bind(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	tc = tc.FromEnv(os.Getenv)
	dial, err := tc.DialOption()
	if err != nil {
		fmt.Fprintf(stderr, "%s healthcheck: %v\n", name, err)
		return 2
	}
	conn, err := grpc.NewClient(*addr, dial)
	if err != nil {
		fmt.Fprintf(stderr, "%s healthcheck: %s: %v\n", name, *addr, err)
		return 1
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: *service})
	if err != nil {
		fmt.Fprintf(stderr, "%s healthcheck: %s: %v\n", name, *addr, err)
		return 1
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		fmt.Fprintf(stderr, "%s healthcheck: %s is %s\n", name, *addr, resp.Status)
		return 1
	}
	return 0
}
