// Package cli holds the command lines of the coordinator and the worker:
// flag sets, validation that names the flag at fault, and the wiring from
// flags to running components. The mains in cmd/ only call Coordinator and
// Worker; tests run the same functions in-process.
package coordcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
	"github.com/ringtrain/ringtrain/pkg/allreduce/shmring"
	"github.com/ringtrain/ringtrain/pkg/cli"
	"github.com/ringtrain/ringtrain/pkg/coordinator"
	"github.com/ringtrain/ringtrain/pkg/coordinator/core"
	"github.com/ringtrain/ringtrain/pkg/dashboard"
	"github.com/ringtrain/ringtrain/pkg/job"
	"github.com/ringtrain/ringtrain/pkg/logging"
	"github.com/ringtrain/ringtrain/pkg/metrics"
	"github.com/ringtrain/ringtrain/pkg/protocol"
	"github.com/ringtrain/ringtrain/pkg/report"
	"github.com/ringtrain/ringtrain/pkg/straggler"
	"github.com/ringtrain/ringtrain/pkg/tlsutil"
	"github.com/ringtrain/ringtrain/pkg/trace"
	"github.com/ringtrain/ringtrain/pkg/train"
)

// maxThreads bounds --threads.
const maxThreads = 1024

// CoordinatorOptions are the coordinator's flags beyond the training job's.
type CoordinatorOptions struct {
	Job             job.Config
	GRPCAddr        string
	Advertise       string
	GossipAddr      string
	GossipAdvertise string
	MinWorkers      int
	MaxWorkers      int
	LocalWorkers    int
	CheckEvery      int
	StepTimeout     time.Duration
	FrameBytes      int
	// BucketMB caps a gradient bucket, in MiB (0: one bucket, all-reduced
	// after backward).
	BucketMB float64
	// Wire is how gradients travel around the ring: f32 or bf16.
	Wire string
	// SkipZeroInputs leaves the first-layer gradient columns of inputs that
	// are zero in the whole global batch off the wire.
	SkipZeroInputs bool
	SingleProcess  bool
	// Threads is the engine's thread count: of the single-process trainer,
	// or shared among the local workers (0: the CPUs this process may use).
	Threads       int
	RingShm       bool   // local workers exchange ring frames through shared memory
	RingShmDir    string // where their segments are
	GossipFast    bool
	CPUProfile    string
	TLS           tlsutil.Config
	GossipKeyFile string
	MetricsAddr   string
	TraceFile     string
}

// CoordinatorFlags returns the coordinator's flag set bound to opts, which
// holds the defaults.
func CoordinatorFlags(opts *CoordinatorOptions, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("coordinator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts.Job.Bind(fs)
	fs.StringVar(&opts.GRPCAddr, "grpc-addr", opts.GRPCAddr, "listen address of the coordinator's gRPC server")
	fs.StringVar(&opts.Advertise, "advertise", opts.Advertise, "gRPC address workers should dial (default: derived from --grpc-addr)")
	fs.StringVar(&opts.GossipAddr, "gossip-addr", opts.GossipAddr, "gossip (memberlist) bind address, TCP and UDP")
	fs.StringVar(&opts.GossipAdvertise, "gossip-advertise", opts.GossipAdvertise, "gossip address other members should use (default: derived)")
	fs.IntVar(&opts.MinWorkers, "min-workers", opts.MinWorkers, "training starts (and continues) when this many workers are live")
	fs.IntVar(&opts.MaxWorkers, "max-workers", opts.MaxWorkers, "at most this many workers train; others wait as spares (0: no limit)")
	fs.IntVar(&opts.LocalWorkers, "local-workers", opts.LocalWorkers, "start this many workers inside this process (single-node mode, real sockets on 127.0.0.1)")
	fs.IntVar(&opts.CheckEvery, "check-every", opts.CheckEvery, "compare the replicas' parameter checksums every this many steps (0: never)")
	fs.DurationVar(&opts.StepTimeout, "step-timeout", opts.StepTimeout, "longest deadline of one attempt at a step (after the first steps the deadline is 10x the recent step time, at least 2s); a worker that does not finish in time is left out")
	fs.IntVar(&opts.FrameBytes, "frame-bytes", opts.FrameBytes, "all-reduce frame size in bytes")
	fs.Float64Var(&opts.BucketMB, "bucket-mb", opts.BucketMB, "cap of a gradient bucket in MiB: the workers all-reduce buckets, last layers first, while backward computes the earlier layers (0: one bucket, after backward)")
	fs.BoolVar(&opts.SkipZeroInputs, "skip-zero-inputs", opts.SkipZeroInputs, "leave off the wire the first-layer gradient columns of input features that are zero in the whole global batch (zero on every worker: lossless; MNIST's border pixels); default on, off with --local-workers")
	fs.StringVar(&opts.Wire, "wire", opts.Wire, "how gradients travel around the ring: f32 (exact) or bf16 (rounded to bfloat16 for the wire, summed in float32, with error feedback; half the bytes)")
	fs.BoolVar(&opts.SingleProcess, "single-process", opts.SingleProcess, "train in this process without workers or networking (the reference trainer)")
	fs.BoolVar(&opts.RingShm, "ring-shm", opts.RingShm, "the --local-workers exchange ring frames through shared memory (else Unix sockets)")
	fs.StringVar(&opts.RingShmDir, "ring-shm-dir", opts.RingShmDir, "directory of the local workers' shared-memory ring segments (a tmpfs; created 0700, segments 0600)")
	fs.IntVar(&opts.Threads, "threads", opts.Threads, "threads of the engine: the single-process trainer's, or shared among the --local-workers (0: the CPUs this process may use); results are bit-identical for any count")
	fs.BoolVar(&opts.GossipFast, "gossip-fast", opts.GossipFast, "fast gossip failure detection (about 1 s) for loopback and tests")
	fs.StringVar(&opts.CPUProfile, "cpuprofile", opts.CPUProfile, "write a CPU profile of this process to this file (go tool pprof)")
	opts.TLS.Bind(fs)
	fs.StringVar(&opts.GossipKeyFile, "gossip-key-file", opts.GossipKeyFile, "file holding the base64 gossip encryption key (16, 24 or 32 bytes); default $"+cli.EnvGossipKey)
	fs.StringVar(&opts.MetricsAddr, "metrics-addr", opts.MetricsAddr, "serve the live dashboard at / (JSON at /api/state) and Prometheus metrics at /metrics on this address (empty: off; the default falls back to a free port when taken)")
	fs.StringVar(&opts.TraceFile, "trace", opts.TraceFile, "write a per-step trace in Chrome trace JSON (chrome://tracing, Perfetto) to this file")
	cli.SetUsage(fs, CoordinatorHelp)
	return fs
}

// CoordinatorHelp is the coordinator's --help: its flags by topic and a
// few examples. A flag in no group is listed under "Other" (and fails the
// cli tests: put it in a group).
var CoordinatorHelp = cli.Help{
	Usage: []string{
		"coordinator [flags]                 train (see the examples at the end)",
		"coordinator predict|eval [flags]    use a trained model (coordinator predict --help)",
		"coordinator healthcheck [--addr]    ask a coordinator's gRPC health service",
		"coordinator gen-certs --dir DIR     make a test CA and certificates",
	},
	Groups: []cli.FlagGroup{
		{Title: "Data", Flags: []string{"dataset", "test", "data-dir", "shuffle"}},
		{Title: "Model", Flags: []string{"hidden", "activation", "output", "loss", "bias", "init", "init-from"}},
		{Title: "Optimization", Flags: []string{"optimizer", "lr", "momentum", "nesterov", "weight-decay",
			"lr-schedule", "lr-step-epochs", "lr-gamma", "warmup-steps", "batch", "accumulate", "epochs", "max-epochs",
			"steps", "until-loss", "patience", "min-delta", "on-nonfinite", "seed", "threads",
			"reduction", "exact-block", "exact-frac-bits"}},
		{Title: "Outputs", Flags: []string{"out", "trace", "cpuprofile"}},
		{Title: "Checkpoints", Flags: []string{"checkpoint-every", "keep-checkpoints", "resume"}},
		{Title: "Cluster", Flags: []string{"local-workers", "single-process", "min-workers", "max-workers", "grpc-addr", "advertise",
			"gossip-addr", "gossip-advertise", "gossip-fast", "check-every", "step-timeout", "frame-bytes", "bucket-mb", "wire", "skip-zero-inputs", "ring-shm", "ring-shm-dir"}},
		{Title: "Security", Flags: []string{"tls-cert", "tls-key", "tls-ca", "gossip-key-file"}},
		{Title: "Operations", Flags: []string{"metrics-addr", "log-format", "log-level"}},
	},
	Examples: []string{
		"coordinator --local-workers 2 # the main job: MNIST 1 vs 2, one epoch, two workers in this process; dashboard at http://127.0.0.1:8070/",
		"coordinator --min-workers 3 --grpc-addr :7070 --gossip-addr :7946 # wait for three workers (worker --join HOST:7946), then train",
		"coordinator --local-workers 2 --optimizer adam --lr 0.001 --max-epochs 20 --patience 3 # until the test loss stops improving",
		"coordinator --single-process --dataset gaussian --hidden 8 --batch 0 --epochs 200 # the lecture's 2-D exercise, full batch, no workers",
		"coordinator --local-workers 3 --reduction exact # the same model.safetensors, bit for bit, with any number of workers",
		"coordinator predict --model out/model.safetensors --input rows.csv # classify CSV rows with the trained model",
	},
}

// DefaultCoordinatorOptions returns the coordinator's defaults.
func DefaultCoordinatorOptions() CoordinatorOptions {
	return CoordinatorOptions{
		Job: job.Defaults(), GRPCAddr: ":7070", GossipAddr: ":7946", MinWorkers: 1, CheckEvery: 50,
		StepTimeout: core.DefaultStepTimeout, FrameBytes: allreduce.DefaultFrameBytes, RingShm: true,
		BucketMB: DefaultBucketMB, Wire: allreduce.WireF32.String(), SkipZeroInputs: true,
		RingShmDir: shmring.DefaultDir(), MetricsAddr: DefaultMetricsAddr,
	}
}

// Validate checks the coordinator's own flags and names the flag at fault.
func (o *CoordinatorOptions) Validate() error {
	errs := []error{o.Job.Validate()}
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if o.Threads < 0 || o.Threads > maxThreads {
		bad("threads", "must be between 0 (the CPUs this process may use) and %d, got %d", maxThreads, o.Threads)
	}
	cli.CheckAddrs(bad, map[string]string{"grpc-addr": o.GRPCAddr, "gossip-addr": o.GossipAddr},
		map[string]string{"advertise": o.Advertise, "gossip-advertise": o.GossipAdvertise})
	if o.MinWorkers < 1 {
		bad("min-workers", "must be at least 1, got %d", o.MinWorkers)
	}
	if o.MaxWorkers < 0 || (o.MaxWorkers > 0 && o.MaxWorkers < o.MinWorkers) {
		bad("max-workers", "must be 0 (no limit) or at least --min-workers (%d), got %d", o.MinWorkers, o.MaxWorkers)
	}
	if o.LocalWorkers < 0 || o.LocalWorkers > 64 {
		bad("local-workers", "must be between 0 and 64, got %d", o.LocalWorkers)
	}
	if o.CheckEvery < 0 {
		bad("check-every", "must be 0 (never) or positive, got %d", o.CheckEvery)
	}
	if o.StepTimeout <= 0 {
		bad("step-timeout", "must be positive, got %v", o.StepTimeout)
	}
	if o.FrameBytes < protocol.MinFrameBytes || o.FrameBytes > protocol.MaxFrameBytes || o.FrameBytes%4 != 0 {
		bad("frame-bytes", "must be a multiple of 4 between %d and %d, got %d", protocol.MinFrameBytes, protocol.MaxFrameBytes, o.FrameBytes)
	}
	if o.BucketMB < 0 || o.BucketMB > 4096 || o.BucketMB != o.BucketMB {
		bad("bucket-mb", "must be between 0 (one bucket) and 4096, got %v", o.BucketMB)
	}
	if w, err := allreduce.ParseWire(o.Wire); err != nil {
		bad("wire", "%v", err)
	} else if w != allreduce.WireF32 && o.Job.Reduction == "exact" {
		bad("wire", "%s rounds gradients on the wire; --reduction exact sums them as integers, which travel as they are (use --wire f32)", o.Wire)
	}
	return errors.Join(errs...)
}

// DefaultBucketMB is --bucket-mb's default: small enough that every layer of
// mnist12 (784-1000-1000-1, the largest 4 MB) has its own bucket, so the
// last layers' all-reduce starts as early as it can (docs/benchmarks.md).
const DefaultBucketMB = 1

// bucketBytes converts --bucket-mb to bytes.
func (o *CoordinatorOptions) bucketBytes() int { return int(o.BucketMB * (1 << 20)) }

// Coordinator runs the coordinator command line and returns the exit code:
// 0 on success, 2 for invalid flags, 128+signal (130 for SIGINT, 143 for
// SIGTERM) when ctx was cancelled with the cause cli.Interrupted and the outputs
// and checkpoints were saved (the run is resumable), 1 for any other
// failure, an interrupted run that could not save included.
func Coordinator(ctx context.Context, args []string, stderr io.Writer) int {
	opts := DefaultCoordinatorOptions()
	fs := CoordinatorFlags(&opts, stderr)
	if code, ok := cli.ParseArgs(fs, args, stderr); !ok {
		return code
	}
	if opts.LocalWorkers > 0 {
		// Single-node mode stays on loopback unless told otherwise, so that
		// nothing is exposed and nothing is dialled beyond this machine.
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["grpc-addr"] {
			opts.GRPCAddr = "127.0.0.1" + opts.GRPCAddr
		}
		if !set["gossip-addr"] {
			opts.GossipAddr = "127.0.0.1" + opts.GossipAddr
		}
		if !set["min-workers"] {
			opts.MinWorkers = opts.LocalWorkers
		}
		if !set["skip-zero-inputs"] {
			// The local workers share this host's cores and a shared-memory
			// ring: packing the first layer costs them more CPU than the
			// bytes it saves (measured in docs/benchmarks.md).
			opts.SkipZeroInputs = false
		}
	}
	if err := opts.Validate(); err != nil {
		fmt.Fprintf(stderr, "coordinator: invalid flags:\n%v\n", err)
		return 2
	}
	log, err := logging.New(stderr, opts.Job.LogFormat, opts.Job.LogLevel)
	if err != nil {
		fmt.Fprintf(stderr, "coordinator: %v\n", err)
		return 2
	}
	hub := dashboard.New(time.Now)
	ops, err := cli.SetupOperations(opts.TLS, opts.GossipKeyFile, opts.MetricsAddr, log, hub.Handler())
	if err != nil && addrInUse(err) && opts.MetricsAddr == DefaultMetricsAddr && !flagSet(fs, "metrics-addr") {
		log.Warn("the default dashboard address is taken; using a free port", "wanted", DefaultMetricsAddr)
		ops, err = cli.SetupOperations(opts.TLS, opts.GossipKeyFile, "127.0.0.1:0", log, hub.Handler())
	}
	if err != nil {
		fmt.Fprintf(stderr, "coordinator: %v\n", err)
		return 2
	}
	if ops.HTTPAddr != nil {
		log.Info("dashboard: open "+dashboardURL(ops.HTTPAddr)+" to watch the run", "url", dashboardURL(ops.HTTPAddr))
	}
	defer ops.Stop()
	opts.TLS = ops.TLS
	key, reg := ops.Key, ops.Registry
	var cm *metrics.Coordinator
	if reg != nil {
		cm = metrics.NewCoordinator(reg)
	}
	var rec *trace.Recorder
	if opts.TraceFile != "" {
		rec = trace.NewRecorder(0)
		defer func() {
			if err := rec.WriteFile(opts.TraceFile); err != nil {
				log.Error("cannot write the trace", "err", err)
			} else {
				log.Info("trace written", "path", opts.TraceFile, "events", rec.Len())
			}
		}()
	}
	if opts.CPUProfile != "" {
		f, err := os.Create(opts.CPUProfile)
		if err != nil {
			fmt.Fprintf(stderr, "coordinator: --cpuprofile: %v\n", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "coordinator: --cpuprofile: %v\n", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	p, err := job.Prepare(opts.Job, log)
	if err != nil {
		log.Error("cannot start training", "err", err)
		return 1
	}
	env := job.Env{Log: log, Stderr: stderr, Now: time.Now, IsTerminal: report.IsTerminal, Metrics: cm, Watch: hub}
	obs, err := dashboard.NewWatch(hub, straggler.Config{}, log, cm)
	if err != nil {
		log.Error("cannot start the straggler detector", "err", err)
		return 1
	}
	var exec train.Executor
	var dist *coordinator.Coordinator
	threads := cli.Threads(opts.Threads)
	if opts.SingleProcess {
		p.Net.SetThreads(threads)
		p.Opt.SetPool(p.Net.Pool())
		local, err := train.NewLocalExecutor(p.Net, p.Opt, p.Train)
		if err != nil {
			log.Error("cannot start training", "err", err)
			return 1
		}
		local.Accumulate = p.Config.Accumulate
		if ex := p.Config.Exact(); ex.On() {
			if err := local.SetExact(ex, p.ExactMaxBlocks()); err != nil {
				log.Error("cannot start training", "err", err)
				return 1
			}
		}
		exec = local
	} else {
		wire, _ := allreduce.ParseWire(opts.Wire) // checked by Validate
		c, err := coordinator.Start(ctx, coordinator.Config{
			GRPCAddr: opts.GRPCAddr, Advertise: opts.Advertise, GossipAddr: opts.GossipAddr, GossipAdvertise: opts.GossipAdvertise,
			MinWorkers: max(opts.MinWorkers, 1), MaxWorkers: opts.MaxWorkers, CheckEvery: opts.CheckEvery,
			StepTimeout: opts.StepTimeout, FrameBytes: opts.FrameBytes, GossipFast: opts.GossipFast, Log: log,
			BucketBytes: opts.bucketBytes(), Wire: wire, SkipZeroInputs: opts.SkipZeroInputs,
			TLS: opts.TLS, GossipKey: key, Metrics: cm, Trace: rec, Threads: threads, Observer: obs,
		}, coordinator.Job{Model: p.Model, Optimizer: p.OptCfg, Train: p.Train, Params: p.Net.Params, OptState: p.Opt,
			Accumulate: p.Config.Accumulate, Exact: p.Config.Exact(), ExactMaxBlocks: p.ExactMaxBlocks()})
		if err != nil {
			log.Error("cannot start the coordinator", "err", err)
			return 1
		}
		defer c.Close()
		if opts.LocalWorkers > 0 {
			lo := coordinator.LocalOptions{Count: opts.LocalWorkers, JoinAddr: joinable(c.GossipAddr()), Fast: opts.GossipFast, Log: log,
				SocketDir: filepath.Join(os.TempDir(), "ringtrain"), TLS: opts.TLS, Key: key,
				Threads: max(1, threads/opts.LocalWorkers)}
			if opts.RingShm {
				lo.ShmDir = opts.RingShmDir
			}
			if reg != nil {
				lo.Registry = reg
			}
			lw, err := coordinator.StartLocalWorkers(ctx, lo)
			if err != nil {
				log.Error("cannot start local workers", "err", err)
				return 1
			}
			defer lw.Stop()
		}
		exec, dist = c, c
	}
	sum, err := job.Run(ctx, p, exec, env)
	if dist != nil && sum != nil && sum.Steps > 0 {
		st := dist.Stats()
		log.Info("distributed run", "steps", sum.Steps, "aborted_attempts", st.Aborts, "ring_generations", st.RingGenerations,
			"compute_ms_per_step", 1e3*st.ComputeSeconds/float64(sum.Steps), "allreduce_ms_per_step", 1e3*st.AllreduceSeconds/float64(sum.Steps),
			"allreduce_exposed_ms_per_step", 1e3*st.ExposedSeconds/float64(sum.Steps),
			"bytes_sent_per_worker_per_step", st.BytesSentPerStep)
	}
	return exitCode(ctx, err, log)
}

// exitCode maps the outcome of job.Run to the coordinator's exit code.
func exitCode(ctx context.Context, err error, log *slog.Logger) int {
	var done *job.Interrupted
	var sig cli.Interrupted
	switch {
	case err == nil:
		return 0
	case errors.As(err, &done) && errors.As(context.Cause(ctx), &sig):
		code := sig.ExitCode()
		if done.Checkpoint == "" {
			log.Warn("interrupted; outputs written, no checkpoint yet: a rerun starts from the beginning",
				"signal", cli.SignalName(sig.Signal), "steps", done.Steps, "exit_code", code)
		} else {
			log.Warn("interrupted; outputs and checkpoint written: a rerun resumes from the checkpoint",
				"signal", cli.SignalName(sig.Signal), "steps", done.Steps, "checkpoint", done.Checkpoint,
				"checkpoint_steps", done.CheckpointSteps, "exit_code", code)
		}
		return code
	case errors.As(context.Cause(ctx), &sig):
		log.Error("interrupted, and the work done was not all saved", "signal", cli.SignalName(sig.Signal), "err", err)
		return 1
	default:
		log.Error("training failed", "err", err)
		return 1
	}
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// joinable turns a bound gossip address into one a local process can dial.
func joinable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
