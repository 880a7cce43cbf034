package cli

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringtrain/ringtrain/pkg/metrics"
	"github.com/ringtrain/ringtrain/pkg/tlsutil"
)

// EnvGossipKey is the environment variable that may hold the gossip key.
const EnvGossipKey = "RINGTRAIN_GOSSIP_KEY"

// gossipKey reads the memberlist encryption key: base64 text from the file
// named by --gossip-key-file, or from $RINGTRAIN_GOSSIP_KEY; it must decode
// to 16, 24 or 32 bytes (AES-128, -192 or -256). Empty: no encryption.
func gossipKey(file string, getenv func(string) string) ([]byte, error) {
	text, source := getenv(EnvGossipKey), "$"+EnvGossipKey
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--gossip-key-file: %w", err)
		}
		text, source = string(b), "--gossip-key-file "+file
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, nil
	}
	key, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("%s: the gossip key must be base64 (e.g. openssl rand -base64 32): %w", source, err)
	}
	if n := len(key); n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("%s: the gossip key decodes to %d bytes, want 16, 24 or 32", source, n)
	}
	return key, nil
}

// Operations is what both binaries set up beyond their own flags: TLS,
// the gossip key and the metrics endpoint.
type Operations struct {
	TLS      tlsutil.Config
	Key      []byte
	Registry *prometheus.Registry // nil when metrics are off
	// HTTPAddr is the address the metrics server is bound to (nil: off).
	HTTPAddr net.Addr
	Stop     func()
}

// SetupOperations completes the TLS configuration from the environment,
// validates it, reads the gossip key and starts the metrics endpoint, which
// also serves page (the coordinator's dashboard; none for nil) on every
// path other than /metrics and /healthz.
func SetupOperations(tc tlsutil.Config, gossipKeyFile, metricsAddr string, log *slog.Logger, page ...http.Handler) (*Operations, error) {
	tc = tc.FromEnv(os.Getenv)
	if err := tc.Validate(); err != nil {
		return nil, err
	}
	key, err := gossipKey(gossipKeyFile, os.Getenv)
	if err != nil {
		return nil, err
	}
	reg, bound, stop, err := serveMetrics(metricsAddr, log, page...)
	if err != nil {
		return nil, err
	}
	return &Operations{TLS: tc, Key: key, Registry: reg, HTTPAddr: bound, Stop: stop}, nil
}

// serveMetrics starts the metrics endpoint when addr is set and returns the
// registry (nil when metrics are off), the bound address and a stop
// function.
func serveMetrics(addr string, log *slog.Logger, page ...http.Handler) (*prometheus.Registry, net.Addr, func(), error) {
	if addr == "" {
		return nil, nil, func() {}, nil
	}
	reg := metrics.NewRegistry()
	srv, bound, err := metrics.Serve(addr, reg, log, page...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--metrics-addr %s: %w", addr, err)
	}
	log.Info("metrics served", "addr", bound.String(), "path", "/metrics")
	return reg, bound, func() { _ = srv.Close() }, nil
}

// ParseArgs parses args into fs and refuses positional arguments. It
// returns the exit code to stop with (0 after --help, 2 for a bad flag)
// and false, or 0 and true to go on.
func ParseArgs(fs *flag.FlagSet, args []string, stderr io.Writer) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q (flags start with --)\n", fs.Name(), fs.Arg(0))
		return 2, false
	}
	return 0, true
}

// CheckAddrs reports, through bad, every address flag that is not
// host:port: those of required always, those of optional when set.
func CheckAddrs(bad func(name, format string, args ...any), required, optional map[string]string) {
	for name, addr := range required {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(name, "%q is not host:port (use :PORT for every interface, port 0 for any port)", addr)
		}
	}
	for name, addr := range optional {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(name, "%q is not host:port", addr)
		}
	}
}

// Threads is the engine thread count of a --threads value: n, or the CPUs
// this process may use (runtime.GOMAXPROCS) for 0.
func Threads(n int) int {
	if n > 0 {
		return n
	}
	return runtime.GOMAXPROCS(0)
}
