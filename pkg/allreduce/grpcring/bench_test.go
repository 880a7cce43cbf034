package grpcring_test

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
	"github.com/ringtrain/ringtrain/pkg/allreduce/grpcring"
)

// BenchmarkAllReduce measures the ring all-reduce the way nccl-tests reports it:
// algBW = buffer bytes / time per all-reduce, busBW = algBW * 2(N-1)/N, in GB/s
// (1e9 bytes), and the process CPU time per rank per all-reduce (cpu-ms/rank).
// All N workers run in this process; transport grpc uses loopback TCP,
// grpc-local the workers' local Unix sockets (Options.SocketDir), inmem the
// in-memory transport (an upper bound). Sizes are in MB of buffer (1 MB = 1e6
// bytes): float32 buffers, and under elem=int64 int64 buffers of the same
// byte sizes (half the elements), so that GB/s compare directly. The float32
// names stay without an elem key, as bench/run.sh and docs cite them (and
// 'AllReduce/transport=grpc' selects float32 only).
//
//	go test -run '^$' -bench 'AllReduce/transport=grpc' ./pkg/allreduce/grpcring
//	go test -run '^$' -bench 'AllReduce/elem=int64/transport=grpc' ./pkg/allreduce/grpcring
func BenchmarkAllReduce(b *testing.B) {
	frameBytes := allreduce.DefaultFrameBytes
	for _, elem := range []string{"", "elem=int64/"} {
		for _, transport := range []string{"grpc", "grpc-local", "inmem"} {
			for _, n := range []int{2, 4} {
				for _, mb := range []float64{1, 7.1, 14.3, 64} {
					name := fmt.Sprintf("%stransport=%s/n=%d/mb=%s", elem, transport, n, strconv.FormatFloat(mb, 'f', -1, 64))
					if elem == "" {
						b.Run(name, func(b *testing.B) { benchRing[float32](b, transport, n, mb, frameBytes) })
					} else {
						b.Run(name, func(b *testing.B) { benchRing[int64](b, transport, n, mb, frameBytes) })
					}
				}
			}
		}
	}
}

// BenchmarkFrameSize compares frame sizes on loopback gRPC, over TCP and over
// local sockets (N=2, 7.1 MB, the MNIST model's gradient buffer); it is how
// allreduce.DefaultFrameBytes was chosen.
func BenchmarkFrameSize(b *testing.B) {
	for _, transport := range []string{"grpc", "grpc-local"} {
		for _, kib := range []int{64, 128, 256, 512, 1024, 2048} {
			b.Run(fmt.Sprintf("transport=%s/frame=%dKiB", transport, kib), func(b *testing.B) { benchRing[float32](b, transport, 2, 7.1, kib<<10) })
		}
	}
}

// benchRing runs all-reduces of mb MB of E over n in-process ranks and
// reports nccl-tests' algBW and busBW.
func benchRing[E allreduce.Element](b *testing.B, transport string, n int, mb float64, frameBytes int) {
	size := int(unsafe.Sizeof(E(0)))
	elems := int(mb * 1e6 / float64(size))
	bufs := make([][]E, n)
	for r := range bufs {
		bufs[r] = make([]E, elems)
		for i := range bufs[r] {
			bufs[r][i] = E(i%7) * 3
		}
	}
	var ts []allreduce.Transport
	if transport == "grpc" || transport == "grpc-local" {
		opts := grpcring.Options{MaxFrameBytes: frameBytes}
		if transport == "grpc-local" {
			// TCP addresses, reached through the peers' local Unix sockets.
			opts.SocketDir = b.TempDir()
		}
		nodes := startNodesOn(b, n, opts, opts.SocketDir != "")
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		ts = connect(b, nodes, order, 1)
	}
	cfg := allreduce.Config{Generation: 1, FrameBytes: frameBytes}
	b.SetBytes(int64(size * elems))
	cpu0 := cpuTime(b)
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		if transport == "inmem" {
			ts = allreduce.NewInmemRing(n)
		}
		cfg.Step = uint64(i)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := allreduce.RunRing(ctx, ts, cfg, bufs)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	per := time.Since(start).Seconds() / float64(b.N)
	// Process CPU time (user+system, all goroutines, GC included) per rank per
	// all-reduce: what one worker would pay for it.
	b.ReportMetric((cpuTime(b)-cpu0).Seconds()*1e3/float64(b.N)/float64(n), "cpu-ms/rank")
	alg := float64(size*elems) / per / 1e9
	b.ReportMetric(alg, "algGB/s")
	b.ReportMetric(alg*2*float64(n-1)/float64(n), "busGB/s")
}

// cpuTime returns the user plus system CPU time the process has used so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
