// Package allreduce sums a float32 or int64 buffer across the workers of a
// ring: after AllReduce returns, every rank holds the same, bit-identical,
// element-wise sum.
// It carries the data plane of data-parallel training: all gradients plus a few
// trailing scalars (loss sum, sample count) in one contiguous buffer, e.g. 1.8 M
// floats (7.1 MB) for the MNIST model.
//
// # Algorithm
//
// N workers form a ring: rank r sends to rank r+1 mod N and receives from rank
// r-1 mod N. The buffer is cut into N contiguous segments whose sizes differ by
// at most one (shard.Split; buffers shorter than N give empty segments, which
// are simply skipped). Then:
//
//   - reduce-scatter, rounds t = 0..N-2: rank r sends segment (r-t) mod N and
//     adds the segment (r-t-1) mod N it receives into its own buffer. After
//     N-1 rounds rank r holds the complete sum of segment (r+1) mod N.
//   - all-gather, rounds t = N-1..2N-3: the same formulas (send (r-t) mod N,
//     receive (r-t-1) mod N), but the received segment is copied, not added,
//     so every rank ends up with the very bits the owning rank computed.
//
// Each rank sends and receives 2(N-1) segments, i.e. 2(N-1)/N of the buffer,
// independent of N: the bandwidth-optimal schedule (nccl-tests' busBW =
// algBW·2(N-1)/N measures exactly this). N=1 is a no-op; N=2 runs the same
// code. The sum is taken in ring order, so it is deterministic for a given ring
// order and buffer contents.
//
// # Frames and pipelining
//
// Every segment transfer is cut into frames of at most Config.FrameBytes
// (DefaultFrameBytes, 512 KiB, measured with BenchmarkFrameSize in grpcring:
// on the shared 2-core development box 256 KiB to 1 MiB were all within the
// run-to-run noise, 64 and 128 KiB paid visibly more CPU per byte and 2 MiB
// frames reduce the overlap). A sender goroutine and the
// receiving caller goroutine run concurrently: the segment sent in round t is
// the one received in round t-1, so frame j of round t leaves as soon as frame j
// of round t-1 has been added, while the following frames are still on the
// wire. The two goroutines hand each other one token per frame over buffered
// channels (received-and-applied, and sent), which is both the dependency
// tracking and the memory-model edge for the regions they share; no lock is
// held on the hot path and no per-frame buffer is allocated (the sender's frame
// is reused, and on little-endian hosts a frame's payload is a view of the
// buffer itself).
//
// A received payload may arrive in pieces (Frame.Parts: the gRPC transport
// hands over its receive buffers as they are, cut at arbitrary byte
// boundaries); it is summed or copied piece by piece, an element straddling two
// pieces going through a 4-byte carry. Sums use AVX2 on amd64 (unaligned loads;
// each lane is the same IEEE-754 single addition as the scalar loop, so the
// result is bit-identical).
//
// # Frame header and validation
//
// A frame carries the ring generation, the global step, the round index, its
// sequence number within the round, the element offset in the buffer, and the
// payload, whose length gives the element count. The receiver knows exactly
// which frame must come next, and refuses (returns a *FrameError naming the
// field, the received and the expected value) any frame whose generation, step,
// round, sequence, offset or length differs, before touching the buffer. A
// stray frame (from an earlier generation, another step, a misconfigured peer)
// therefore aborts the step rather than silently corrupting the sum. After an
// error the buffer holds partial sums and the caller must discard the step.
//
// # Wire format
//
// The payload is raw little-endian IEEE-754 float32, 4 bytes per element
// (int64 buffers: little-endian two's complement, 8 bytes per element): no
// per-element encoding pass (protobuf's repeated float would need one, and an
// allocation, per message). On big-endian hosts the
// package encodes and decodes with encoding/binary instead (encode_other.go).
// The gRPC transport (sub-package grpcring) sends each frame as one protobuf
// message ringtrain.v1.RingFrame on one long-lived client stream per
// neighbour (proto/ringtrain/v1/ring.proto).
//
// # int64 buffers (exact reduction)
//
// AllReduce and RunRing are generic over Element (float32 | int64). Exact
// reduction has every worker turn its gradients into int64 fixed-point
// numbers; their sum is exact and associative, so, unlike the float32 sum,
// the result does not depend on the ring order, the number of workers or the
// bucketing. An int64 buffer runs the very same schedule, frames and
// header checks (Offset still counts elements, the length check bytes); only
// the element differs: 8 bytes little-endian two's complement on the wire,
// at most FrameBytes/8 elements a frame (FrameBytes below 8 is an error),
// and reduce-scatter adds with Go's wrapping int64 addition. Wrapping
// addition is associative, so a partial sum may overflow on the way and the
// result is still exact whenever the true total fits in an int64, which the
// caller guarantees (fixed-point scale and headroom). Nothing is rounded, so
// what exists to manage rounding is refused with an error naming it:
// WireBF16, Config.Residual and Config.Exact > 0. Transports move bytes and
// need no change; an int64 payload is a multiple of 8 bytes, hence of 4.
//
// # Transports and cancellation
//
// The algorithm only needs Transport's Send (to the right neighbour) and Recv
// (from the left). NewInmemRing builds connected in-memory transports for tests
// and RunRing runs a whole ring in one process, like hashicorp/raft's
// InmemTransport and test cluster. Everything blocks on ctx: a dead neighbour
// makes AllReduce return ctx's error once the caller's deadline passes, and a
// failing Send or Recv cancels the other goroutine and is returned as the
// cause.
package allreduce
