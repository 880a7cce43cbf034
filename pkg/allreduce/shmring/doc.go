// Package shmring is a shared-memory allreduce.Transport between ring
// neighbours on the same host: one copy per frame (from the sender's buffer
// into the receiver's mapped ring) and none on receipt (the all-reduce sums
// straight out of the mapping), no system call and no allocation per frame
// while both sides are busy.
//
// # Segments
//
// A worker that enables shared memory creates, at start, its receive segment
// with Listen: a file in a directory the co-located workers share (DefaultDir,
// /dev/shm/ringtrain-<uid>, created 0700 and required to be owned by the uid
// and closed to group and others), named by a hash of the worker's advertised
// gRPC address (SegmentPath, like grpcring.LocalSocketPath), mode 0600, sized
// with fallocate (so that a full /dev/shm fails here and not with SIGBUS later)
// and mapped MAP_SHARED. It is built under a temporary name and renamed into
// place, so a neighbour never sees a partial header. Segment.Close removes the
// file and unmaps it. The owner holds an OFD write lock on the file's first
// byte for as long as it has the file open, so the lock vanishes with the
// process however it ends; a segment is live iff that lock is held AND the pid
// in its header exists. A killed worker leaves its file behind; neighbours
// ignore it, and Listen replaces it when the worker comes back.
//
// Layout (host-native integers; one 4 KiB header page, then the ring):
//
//	header  0 magic "RSHMRNG1" (uint64, stored last)   8 layout version (uint32)
//	       12 header size (uint32)                    16 ring capacity C (uint64)
//	       24 owner pid (uint64)                      32 address length (uint32)
//	       64 advertised address (256 bytes)
//	      512 head (uint64): bytes ever reserved by producers, alone in its 128 bytes
//	      640 tail (uint64): bytes ever released by the consumer, alone in its 128 bytes
//	      768 reservation lock (uint64): 0 or the reserving producer's pid, alone in its 128 bytes
//	4096    ring of C bytes (DefaultCapacity: 8 MiB + 64 KiB)
//
// The ring holds variable-length records at 64-byte aligned positions (head
// and tail count bytes and never wrap; a record sits at position mod C). A
// record is a 64-byte header (commit word, stride, generation, step, offset,
// round, seq, payload length, producer's pid) followed by the payload, padded
// to 64 bytes;
// the header never straddles the end of the ring, the payload may (the
// receiver then returns it as Data plus one Parts piece, both multiples of 64
// bytes long but the last). Records rather than fixed slots: the frame size is
// the coordinator's choice per job (1 KiB to 4 MiB), unknown when the worker
// starts, and fixed slots sized for the 4 MiB maximum would need 32 MiB per
// worker for 8 slots (Docker's default /dev/shm is 64 MiB for the whole
// host's workers), while a byte ring of C holds two 4 MiB frames or sixteen
// 512 KiB ones in 8 MiB.
//
// # Protocol and memory ordering
//
// Producer (Send): take the reservation lock, CompareAndSwap(lock, 0, pid);
// load head h; once C - (h - tail) >= stride (tail is cached and reloaded
// only when the cached value shows too little room; the lock is dropped
// while waiting for room), write the record header, with the producer's pid,
// at h with plain stores, reserve [h, h+stride) with an atomic store
// head := h+stride and drop the lock (store 0); copy the payload with plain
// stores; then publish with an atomic store of the commit word := h+1.
// Consumer (Recv): once head > pos (atomic load; pos is the consumer's
// position, == tail), atomically load the record's commit word; when it
// equals pos+1 the record is complete: read its header with plain loads and
// return the payload in place. The next Recv releases it with an atomic
// store tail := pos+stride.
//
// The atomic store of the commit word is ordered after the plain stores that
// fill the record, and the consumer's plain loads of the record are ordered
// after its atomic load that observed the commit word (a release/acquire pair:
// Go's sync/atomic operations are sequentially consistent, and they are the
// same instructions whether the other side is a goroutine or another process
// mapping the same page: XCHG/MOV on amd64, STLR/LDAR on arm64). Likewise the
// consumer's reads of a payload (done by the all-reduce before it calls Recv
// again) precede its atomic store of tail, and a producer only writes into
// released space after an atomic load of tail that observed the release. The
// commit word names the record's position, so a commit word left from an
// earlier lap of the ring never passes for a fresh one. The reservation
// lock makes the ring safe for several producers: a former left neighbour
// still sending frames of an aborted generation writes its own records, which
// the receiver drops (below), instead of tearing the new neighbour's. The
// receiver checks head, tail, strides and lengths against the capacity and
// returns an error wrapping ErrCorrupt rather than reading outside the ring.
//
// # Producers that die
//
// A producer killed between its reservation and its publication (a worker
// SIGKILLed while copying a frame: tens of microseconds per frame on tmpfs,
// much longer when the copy page-faults or the process is preempted) leaves
// a record that will never be published, and that the consumer must not
// wait on: all later records, of every later generation and of whichever
// neighbour replaces the dead one, are behind it, and the producers soon
// block for room. Since the header, with its stride and pid, is written
// before head moves past the record (and read after the atomic load of head
// that saw it), the consumer can tell: a record still unpublished once its
// wait has reached the sleeping phase, whose producer's pid no longer exists
// (kill(pid, 0)) and which is still unpublished after that check, is
// abandoned: Recv (and Connect, which drops older generations) skips it and
// releases its room. A producer killed while holding the reservation lock
// (a few stores) leaves the lock word naming a dead pid: a producer that
// waits on it long enough to sleep checks that pid and takes the lock over
// with CompareAndSwap(lock, dead pid, its pid); head and the headers below
// it are consistent at every point of the holder's critical section. A
// frozen producer (SIGSTOP) is alive: its record, or the lock, waits for it
// until it runs again or dies.
//
// # Waiting and cancellation
//
// A side with nothing to do (no record to read; no room to write) polls with
// backoff: it retries at once for a while, then yields the processor
// (runtime.Gosched), then sleeps with nanosleep, from 2 µs doubling to 64 µs,
// having lowered the thread's timer slack from the kernel's 50 µs to 1 µs
// (time.Sleep is not used: the Go runtime stretches sub-millisecond sleeps of
// an idle process to about 1 ms). It checks ctx.Done() every round:
// both methods return promptly, with an error wrapping ctx's cause, once ctx
// is done; this is how a sender blocked on a full ring of a dead neighbour,
// or a receiver waiting for one, is released (the coordinator cancels the
// step). A frame being copied is never waited for by its own producer, and
// an unpublished reservation is never published after a cancellation, as
// cancellation is only observed before reserving.
//
// # Choosing shared memory per direction
//
// A direction uses shared memory iff both its ends have a live segment.
// Network.Connect(ctx, left, right, gen) of a worker that has its segment
// sends through shared memory iff the right neighbour's segment exists in the directory, passes the checks
// (regular file of this uid, mode 0600, magic, layout version, size, the
// address it was made for) and is live, and can be mapped; it receives
// through shared memory iff the worker has its own segment and the left
// neighbour's segment passes the same checks (the left neighbour, running
// the same rule, then sends into ours). Every other direction goes through the
// fallback RingNetwork (the worker's gRPC ring), so one Transport may send
// over gRPC and receive over shared memory or the other way round. A worker
// whose own file was removed by someone else (a /dev/shm cleanup,
// systemd-logind's RemoveIPC) uses the fallback both ways, as its neighbours,
// who no longer see the file, do towards it. Both ends decide from the same
// two files, so they agree, unless a mapping fails on
// one side only (out of address space): the receiver then waits on shared
// memory until the step's deadline and the step fails.
//
// # Generations
//
// Recv drops records of generations older than its Transport's, like
// grpcring. Connect for a new generation also drops the published records of
// older generations left in the ring by an aborted all-reduce, and releases
// the record the previous Transport still held, unless that record is of the
// new generation or newer: an older all-reduce rejected it, and it is
// delivered again. Every other header field is passed on to the all-reduce,
// which rejects a frame it does not expect with a *allreduce.FrameError.
//
// # Limits
//
// Workers in different pid namespaces do not see each other's pids, so they
// treat each other's segments as stale and use the fallback. A dead
// producer's pid reused by a new process before the consumer or a producer
// checks it (pids are handed out in order, so only after the pid space
// wrapped around) passes for alive: the record or the lock is then waited on
// until that process ends.
package shmring
