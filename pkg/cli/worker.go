package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/ringtrain/ringtrain/pkg/allreduce/shmring"
	"github.com/ringtrain/ringtrain/pkg/logging"
	"github.com/ringtrain/ringtrain/pkg/metrics"
	"github.com/ringtrain/ringtrain/pkg/tlsutil"
	"github.com/ringtrain/ringtrain/pkg/worker"
)

// WorkerOptions are the worker's flags.
type WorkerOptions struct {
	ID              string
	Join            string
	GRPCAddr        string
	Advertise       string
	GossipAddr      string
	GossipAdvertise string
	ExpectModel     string
	GossipFast      bool
	RingSocketDir   string
	RingShm         bool
	RingShmDir      string
	Threads         int
	TLS             tlsutil.Config
	GossipKeyFile   string
	MetricsAddr     string
	LogFormat       string
	LogLevel        string
}

// DefaultWorkerOptions returns the worker's defaults.
func DefaultWorkerOptions() WorkerOptions {
	return WorkerOptions{GRPCAddr: ":7071", GossipAddr: ":7947", LogFormat: "text", LogLevel: "info",
		RingSocketDir: filepath.Join(os.TempDir(), "ringtrain"), RingShm: true, RingShmDir: shmring.DefaultDir()}
}

// WorkerFlags returns the worker's flag set bound to opts.
func WorkerFlags(opts *WorkerOptions, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&opts.ID, "id", opts.ID, "unique worker name (default: host name and a random suffix)")
	fs.StringVar(&opts.Join, "join", opts.Join, "gossip address HOST:PORT of any member (comma-separated list allowed; a DNS name may resolve to several)")
	fs.StringVar(&opts.GRPCAddr, "grpc-addr", opts.GRPCAddr, "listen address of the worker's gRPC server")
	fs.StringVar(&opts.Advertise, "advertise", opts.Advertise, "gRPC address the coordinator and ring neighbours should dial (default: derived)")
	fs.StringVar(&opts.GossipAddr, "gossip-addr", opts.GossipAddr, "gossip (memberlist) bind address, TCP and UDP")
	fs.StringVar(&opts.GossipAdvertise, "gossip-advertise", opts.GossipAdvertise, "gossip address other members should use (default: derived)")
	fs.StringVar(&opts.ExpectModel, "expect-model", opts.ExpectModel, `refuse to train any other model, e.g. "layers=784-1000-1000-1 activation=relu output=sigmoid loss=bce bias=true init=he"`)
	fs.BoolVar(&opts.GossipFast, "gossip-fast", opts.GossipFast, "fast gossip failure detection (about 1 s) for loopback and tests")
	fs.IntVar(&opts.Threads, "threads", opts.Threads, "threads of the engine (0: the CPUs this process may use); results are bit-identical for any count")
	fs.BoolVar(&opts.RingShm, "ring-shm", opts.RingShm, "exchange ring frames with neighbours on the same host through shared memory (falls back to the Unix socket or TCP)")
	fs.StringVar(&opts.RingShmDir, "ring-shm-dir", opts.RingShmDir, "directory of the shared-memory ring segments (a tmpfs; created 0700, segments 0600)")
	fs.StringVar(&opts.RingSocketDir, "ring-socket-dir", opts.RingSocketDir, "directory for the Unix socket that ring neighbours on the same host use instead of TCP (empty: TCP only)")
	opts.TLS.Bind(fs)
	fs.StringVar(&opts.GossipKeyFile, "gossip-key-file", opts.GossipKeyFile, "file holding the base64 gossip encryption key (16, 24 or 32 bytes); default $"+EnvGossipKey)
	fs.StringVar(&opts.MetricsAddr, "metrics-addr", opts.MetricsAddr, "serve Prometheus metrics on this address at /metrics (empty: off)")
	fs.StringVar(&opts.LogFormat, "log-format", opts.LogFormat, "log format: text or json")
	fs.StringVar(&opts.LogLevel, "log-level", opts.LogLevel, "log level: debug, info, warn, error")
	SetUsage(fs, WorkerHelp)
	return fs
}

// WorkerHelp is the worker's --help: its flags by topic and a few
// examples. A flag in no group is listed under "Other" (and fails the cli
// tests: put it in a group).
var WorkerHelp = Help{
	Usage: []string{
		"worker --join HOST:PORT [flags]     join a run and train until stopped (SIGTERM: leave gracefully)",
		"worker healthcheck [--addr]         ask a worker's gRPC health service",
	},
	Groups: []FlagGroup{
		{"Cluster", []string{"join", "id", "grpc-addr", "advertise", "gossip-addr", "gossip-advertise", "gossip-fast", "expect-model"}},
		{"Ring and engine", []string{"ring-shm", "ring-shm-dir", "ring-socket-dir", "threads"}},
		{"Security", []string{"tls-cert", "tls-key", "tls-ca", "gossip-key-file"}},
		{"Operations", []string{"metrics-addr", "log-format", "log-level"}},
	},
	Examples: []string{
		"worker --join 127.0.0.1:7946 --grpc-addr 127.0.0.1:0 --gossip-addr 127.0.0.1:0 # on the coordinator's machine, any free ports",
		"worker --join coordinator.example:7946 --advertise $(hostname):7071 --gossip-advertise $(hostname):7947 # on another machine",
		"worker --join 10.0.0.5:7946 --tls-cert w.pem --tls-key w.key --tls-ca ca.pem --gossip-key-file gossip.key # secured (docs/security.md)",
	},
}

// Validate checks the worker's flags and names the flag at fault.
func (o *WorkerOptions) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if o.Threads < 0 || o.Threads > 1024 {
		bad("threads", "must be between 0 (the CPUs this process may use) and 1024, got %d", o.Threads)
	}
	if strings.TrimSpace(o.Join) == "" {
		bad("join", "is required: the gossip address of the coordinator or of any worker")
	}
	for _, a := range splitList(o.Join) {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad("join", "%q is not host:port", a)
		}
	}
	CheckAddrs(bad, map[string]string{"grpc-addr": o.GRPCAddr, "gossip-addr": o.GossipAddr},
		map[string]string{"advertise": o.Advertise, "gossip-advertise": o.GossipAdvertise})
	if o.LogFormat != "text" && o.LogFormat != "json" {
		bad("log-format", "must be text or json, got %q", o.LogFormat)
	}
	return errors.Join(errs...)
}

// Worker runs the worker command line and returns the exit code: 0 after a
// clean shutdown, 2 for invalid flags, 1 for any other failure (including a
// refusal by the coordinator).
func Worker(ctx context.Context, args []string, stderr io.Writer) int {
	opts := DefaultWorkerOptions()
	fs := WorkerFlags(&opts, stderr)
	if code, ok := ParseArgs(fs, args, stderr); !ok {
		return code
	}
	if err := opts.Validate(); err != nil {
		fmt.Fprintf(stderr, "worker: invalid flags:\n%v\n", err)
		return 2
	}
	log, err := logging.New(stderr, opts.LogFormat, opts.LogLevel)
	if err != nil {
		fmt.Fprintf(stderr, "worker: --log-level: %v\n", err)
		return 2
	}
	ops, err := SetupOperations(opts.TLS, opts.GossipKeyFile, opts.MetricsAddr, log)
	if err != nil {
		fmt.Fprintf(stderr, "worker: %v\n", err)
		return 2
	}
	defer ops.Stop()
	opts.TLS = ops.TLS
	key, reg := ops.Key, ops.Registry
	var wm *metrics.Worker
	if reg != nil {
		wm = metrics.NewWorker(reg)
	}
	threads := Threads(opts.Threads)
	shmDir := ""
	if opts.RingShm {
		shmDir = opts.RingShmDir
	}
	w, err := worker.Start(ctx, worker.Config{
		ID: opts.ID, GRPCAddr: opts.GRPCAddr, Advertise: opts.Advertise, GossipAddr: opts.GossipAddr,
		GossipAdvertise: opts.GossipAdvertise, Join: splitList(opts.Join), ExpectModel: opts.ExpectModel,
		GossipFast: opts.GossipFast, RingSocketDir: opts.RingSocketDir, RingShmDir: shmDir, Log: log, Threads: threads,
		TLS: opts.TLS, GossipKey: key, Metrics: wm,
	})
	if err != nil {
		log.Error("cannot start the worker", "err", err)
		return 1
	}
	if err := w.Run(ctx); err != nil {
		log.Error("worker failed", "err", err)
		return 1
	}
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
