package shmring

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
)

// BenchmarkAllReduce measures the ring all-reduce over shared memory the way
// grpcring's BenchmarkAllReduce (and nccl-tests) report it: algBW = buffer
// bytes / time per all-reduce, busBW = algBW * 2(N-1)/N, in GB/s (1e9 bytes),
// and the CPU time (user+system, from getrusage in each rank's process) per
// all-reduce per rank. Every rank runs in its own process (the test binary
// re-executed, see rankMain); this process only drives them. Sizes are in MB
// of buffer (1 MB = 1e6 bytes): float32, and under elem=int64 int64 buffers
// of the same byte sizes, so that GB/s compare directly (the float32 names
// keep no elem key, as in grpcring); frames are allreduce.DefaultFrameBytes.
//
//	go test -run '^$' -bench 'AllReduce/transport=shm' ./pkg/allreduce/shmring
//	go test -run '^$' -bench 'AllReduce/elem=int64/transport=shm' ./pkg/allreduce/shmring
func BenchmarkAllReduce(b *testing.B) {
	for _, elem := range []string{"float32", "int64"} {
		prefix := ""
		if elem != "float32" {
			prefix = "elem=" + elem + "/"
		}
		for _, n := range []int{2, 4} {
			for _, mb := range []float64{1, 7.1, 14.3, 64} {
				name := fmt.Sprintf("%stransport=shm/n=%d/mb=%s", prefix, n, strconv.FormatFloat(mb, 'f', -1, 64))
				b.Run(name, func(b *testing.B) { benchProcs(b, n, mb, benchFrame(), elem) })
			}
		}
	}
}

// benchDir returns a segment directory on /dev/shm, where workers keep
// theirs, or in the temporary directory where there is none. (A segment on
// a disk-backed file system pays for write-back and its write faults.)
func benchDir(b *testing.B) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "shmring-bench-")
		if err == nil {
			b.Cleanup(func() { _ = os.RemoveAll(dir) })
			return dir
		}
	}
	return filepath.Join(b.TempDir(), "shm")
}

func benchProcs(b *testing.B, n int, mb float64, frameBytes int, elem string) {
	size := 4
	if elem == "int64" {
		size = 8
	}
	elems := int(mb * 1e6 / float64(size))
	ps := startRanksElem(b, benchDir(b), n, elems, frameBytes, elem)
	for r, got := range all(b, ps, "connect 1") {
		if got != "connected true true" {
			b.Fatalf("rank %d: %s", r, got)
		}
	}
	done := func(line string) int64 {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "done" {
			b.Fatalf("rank: %s", line)
		}
		cpu, _ := strconv.ParseInt(f[1], 10, 64)
		return cpu
	}
	for _, got := range all(b, ps, "run 0 3 60000") { // warm up: page in the buffers
		done(got)
	}
	b.SetBytes(int64(size * elems))
	b.ResetTimer()
	start := time.Now()
	got := all(b, ps, fmt.Sprintf("run 3 %d %d", b.N, 600_000))
	el := time.Since(start)
	b.StopTimer()
	var cpu int64
	for _, g := range got {
		cpu += done(g)
	}
	per := el.Seconds() / float64(b.N)
	b.ReportMetric(float64(cpu)/1e6/float64(b.N)/float64(n), "cpu-ms/rank")
	alg := float64(size*elems) / per / 1e9
	b.ReportMetric(alg, "algGB/s")
	b.ReportMetric(alg*2*float64(n-1)/float64(n), "busGB/s")
}

// benchFrame is the frame size: allreduce.DefaultFrameBytes, or
// $SHMRING_BENCH_FRAME (experiments).
func benchFrame() int {
	if v, err := strconv.Atoi(os.Getenv("SHMRING_BENCH_FRAME")); err == nil && v > 0 {
		return v
	}
	return allreduce.DefaultFrameBytes
}
