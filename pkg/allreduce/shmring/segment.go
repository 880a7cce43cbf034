package shmring

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Segment layout (all integers host-native: a segment never leaves its host).
// The header is one page; the data ring follows it.
const (
	headerBytes = 4096
	magic       = 0x31474e52_4d485352 // "RSHMRNG1" read as a little-endian uint64
	// layoutVersion changes whenever the header or record layout does; a peer
	// with another version is not used (both sides then fall back).
	// 2: the reservation lock and the producer's pid in each record.
	layoutVersion = 2

	offMagic    = 0   // uint64, stored last (atomically) when the file is created
	offVersion  = 8   // uint32
	offHeader   = 12  // uint32: headerBytes
	offCapacity = 16  // uint64: bytes of the data ring
	offPid      = 24  // uint64: owner's pid
	offAddrLen  = 32  // uint32
	offAddr     = 64  // maxAddr bytes: the owner's advertised address
	maxAddr     = 256 //
	offHead     = 512 // uint64: bytes ever reserved by producers (own 128-byte block)
	offTail     = 640 // uint64: bytes ever released by the consumer (own 128-byte block)
	offReserve  = 768 // uint64: 0, or the pid of the producer reserving a record (own 128-byte block)

	// Record header, at a 64-byte aligned position of the ring; the payload
	// follows it (and may wrap around the end of the ring).
	recHeader    = 64
	recCommit    = 0  // uint64: the record's ring position + 1, stored last (atomically)
	recStride    = 8  // uint64: bytes the record occupies (header + payload, rounded up to 64)
	recGen       = 16 // uint64
	recStep      = 24 // uint64
	recOffset    = 32 // uint64
	recRound     = 40 // uint32
	recSeq       = 44 // uint32
	recLen       = 48 // uint32: payload bytes
	recPid       = 52 // uint32: the producer's pid, so that the consumer can skip a record its dead producer never published
	recAlignment = 64

	// DefaultCapacity is the data ring of a segment: room for two frames of
	// the largest size a worker accepts (protocol.MaxFrameBytes, 4 MiB) with
	// their headers, or 16 default (512 KiB) frames. A segment is
	// DefaultCapacity plus one page, 8.07 MiB.
	DefaultCapacity = 8<<20 + 64<<10
	// maxCapacity bounds what a peer's header may claim.
	maxCapacity = 1 << 30

	// ownerLockByte is the byte of the file the owner holds an OFD write
	// lock on for as long as the segment is open: the lock disappears with
	// the owner's process, however it ends.
	ownerLockByte = 0
)

// DefaultDir returns the default segment directory: /dev/shm/ringtrain-<uid>.
func DefaultDir() string { return fmt.Sprintf("/dev/shm/ringtrain-%d", os.Geteuid()) }

// SegmentPath returns the path, under dir, of the receive segment of the
// worker whose advertised address is addr. The name is a hash of addr (as in
// grpcring.LocalSocketPath), so a neighbour that knows only the address finds it.
func SegmentPath(dir, addr string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(addr))
	return filepath.Join(dir, fmt.Sprintf("ring-%016x.shm", h.Sum64()))
}

// Segment is a worker's receive segment: the mapped file its left neighbour
// writes frames into. Create it with Listen; the Network reads from it.
type Segment struct {
	dir, addr, path string
	file            *os.File
	dev, ino        uint64
	mem             []byte // the whole mapping
	data            []byte // the ring, mem[headerBytes:]
	capacity        uint64
	head, tail      *uint64

	// Consumer state (only the Transport's Recv touches it; one all-reduce
	// at a time per segment).
	pos     uint64 // consumer position: == *tail unless a frame is held
	held    bool   // a frame was handed out and is not released yet
	heldEnd uint64 // position after the held frame
	heldGen uint64
	// recvGen is the generation of the Transport that last received: a held
	// frame of a newer generation than that was rejected by its all-reduce
	// and is delivered again; any other held frame was consumed.
	recvGen  uint64
	headSeen uint64 // last value of *head loaded
}

// Listen creates the receive segment of the worker advertised as addr in dir
// (created 0700 if missing; it must be owned by this uid and closed to
// group and others), with DefaultCapacity, replacing a stale file of a dead
// owner. It fails if a live process owns the segment, or if the file cannot
// be created, sized or mapped (no /dev/shm, no space, permissions): the
// caller then logs and runs without shared memory.
func Listen(dir, addr string) (*Segment, error) { return ListenCapacity(dir, addr, DefaultCapacity) }

// ListenCapacity is Listen with a data ring of capacity bytes (rounded up to a
// page). A frame needs its payload rounded up to 64 bytes plus 64: the ring
// must hold at least two of the largest frames in use to pipeline.
func ListenCapacity(dir, addr string, capacity int) (*Segment, error) {
	if len(addr) > maxAddr {
		return nil, fmt.Errorf("shmring: address %q is longer than %d bytes", addr, maxAddr)
	}
	if capacity <= 0 || capacity > maxCapacity {
		return nil, fmt.Errorf("shmring: capacity %d not in (0, %d]", capacity, maxCapacity)
	}
	capacity = (capacity + headerBytes - 1) &^ (headerBytes - 1)
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	sweep(dir)
	path := SegmentPath(dir, addr)
	if p, err := openPeer(path, addr); err == nil {
		p.close()
		return nil, fmt.Errorf("shmring: segment %s of %s is in use by live process %d", path, addr, p.pid)
	}
	// Build the file under a temporary name and rename it into place, so
	// that a neighbour never sees a half-initialised header.
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := fmt.Sprintf("%s.%d.%s.tmp", path, os.Getpid(), hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("shmring: create segment: %w", err)
	}
	s, err := initSegment(f, dir, addr, path, capacity)
	if err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		s.unmap()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("shmring: publish segment %s: %w", path, err)
	}
	return s, nil
}

func initSegment(f *os.File, dir, addr, path string, capacity int) (*Segment, error) {
	fd := int(f.Fd())
	size := int64(headerBytes + capacity)
	if err := f.Chmod(0o600); err != nil {
		return nil, fmt.Errorf("shmring: chmod segment: %w", err)
	}
	// Reserve the pages now (tmpfs would otherwise SIGBUS on a write once
	// /dev/shm is full); file systems without fallocate just get the size.
	if err := unix.Fallocate(fd, 0, 0, size); err != nil {
		if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
			return nil, fmt.Errorf("shmring: reserve %d bytes for the segment: %w", size, err)
		}
		if err := f.Truncate(size); err != nil {
			return nil, fmt.Errorf("shmring: size segment: %w", err)
		}
	}
	if err := lockOwner(fd); err != nil {
		return nil, err
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("shmring: map segment: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		_ = unix.Munmap(mem)
		return nil, fmt.Errorf("shmring: stat segment: %w", err)
	}
	*u32(mem, offVersion) = layoutVersion
	*u32(mem, offHeader) = headerBytes
	*u64(mem, offCapacity) = uint64(capacity)
	*u64(mem, offPid) = uint64(os.Getpid())
	*u32(mem, offAddrLen) = uint32(len(addr))
	copy(mem[offAddr:offAddr+maxAddr], addr)
	atomic.StoreUint64(u64(mem, offMagic), magic)
	s := &Segment{dir: dir, addr: addr, path: path, file: f, dev: st.Dev, ino: st.Ino, mem: mem}
	s.setMapping(mem)
	return s, nil
}

func (s *Segment) setMapping(mem []byte) {
	s.mem = mem
	s.data = mem[headerBytes:]
	s.capacity = uint64(len(s.data))
	s.head = u64(mem, offHead)
	s.tail = u64(mem, offTail)
	s.pos = atomic.LoadUint64(s.tail)
	s.headSeen = s.pos
}

// inPlace reports whether the segment's path still names its file.
func (s *Segment) inPlace() bool {
	var st unix.Stat_t
	return unix.Stat(s.path, &st) == nil && st.Dev == s.dev && st.Ino == s.ino
}

// Path returns the segment's file.
func (s *Segment) Path() string { return s.path }

// Addr returns the advertised address the segment was created for.
func (s *Segment) Addr() string { return s.addr }

// Dir returns the directory the segment is in.
func (s *Segment) Dir() string { return s.dir }

// Close removes the segment's file (if it is still this segment's) and
// unmaps it. A neighbour that has it mapped keeps writing into the orphaned
// memory until it next connects; nobody reads it. Do not call Close while an
// all-reduce is receiving on the segment.
func (s *Segment) Close() error {
	if s.mem == nil {
		return nil
	}
	var err error
	if s.inPlace() {
		err = os.Remove(s.path)
	}
	s.unmap()
	return err
}

func (s *Segment) unmap() {
	if s.mem != nil {
		_ = unix.Munmap(s.mem)
		s.mem, s.data = nil, nil
	}
	_ = s.file.Close() // releases the owner lock
}

// sweep removes the segments in dir whose owner died: a killed worker
// cannot remove its own, and workers get new addresses (and so new file
// names) when they restart, so without this the dead ones' memory would stay
// reserved in the tmpfs. A segment is stale when nobody holds its owner lock
// (the lock is taken before the file gets its name, and goes away with the
// process); the sweeper takes the lock itself, so an owner cannot appear
// while it removes the file. Files it cannot open or lock are left alone.
func sweep(dir string) {
	names, err := filepath.Glob(filepath.Join(dir, "ring-*.shm"))
	if err != nil {
		return
	}
	for _, path := range names {
		f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW, 0)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG &&
			int(st.Uid) == os.Geteuid() && lockOwner(int(f.Fd())) == nil {
			_ = os.Remove(path)
		}
		_ = f.Close()
	}
	// A segment under construction whose builder died (its pid is in the name).
	tmps, _ := filepath.Glob(filepath.Join(dir, "ring-*.shm.*.tmp"))
	for _, path := range tmps {
		parts := strings.Split(filepath.Base(path), ".")
		if len(parts) == 5 {
			if pid, err := strconv.Atoi(parts[2]); err == nil && !pidAlive(pid) {
				_ = os.Remove(path)
			}
		}
	}
}

// ensureDir creates dir 0700 if needed and checks that it is a directory of
// this uid that nobody else may write to (or list): otherwise another user
// could plant or swap segment files.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("shmring: segment directory: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("shmring: segment directory: %w", err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("shmring: segment directory %s is not a directory", dir)
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("shmring: segment directory %s is owned by uid %d, not %d", dir, st.Uid, os.Geteuid())
	case st.Mode&0o077 != 0:
		return fmt.Errorf("shmring: segment directory %s has mode %#o: want no access for group and others", dir, st.Mode&0o777)
	}
	return nil
}

// lockOwner takes the owner lock on fd (an OFD lock: it belongs to the open
// file, is not shared with other descriptors of the same process, and goes
// away when the file is closed or the process dies).
func lockOwner(fd int) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: ownerLockByte, Len: 1}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk); err != nil {
		return fmt.Errorf("shmring: lock segment: %w", err)
	}
	return nil
}

// ownerAlive reports whether the owner lock on fd's file is held and the
// process recorded in the header exists.
func ownerAlive(fd int, pid int) bool {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: ownerLockByte, Len: 1}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, &lk); err != nil || lk.Type == unix.F_UNLCK {
		return false
	}
	return pidAlive(pid)
}

func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// peer is a neighbour's segment as seen by this process: opened, checked,
// and (for sending) mapped.
type peer struct {
	path     string
	file     *os.File
	dev, ino uint64
	pid      int
	capacity uint64
	mem      []byte
	data     []byte
	head     *uint64
	tail     *uint64
	reserve  *uint64 // the reservation lock
	// Producer cache: the consumer's tail as last loaded.
	tailSeen uint64
}

// openPeer opens the segment at path, created for addr, and checks it: a
// regular file of this uid with mode 0600, a header of this layout version
// for addr, whose size matches, and a live owner. It does not map it.
func openPeer(path, addr string) (*peer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	p, err := checkPeer(f, path, addr)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return p, nil
}

func checkPeer(f *os.File, path, addr string) (*peer, error) {
	fd := int(f.Fd())
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, fmt.Errorf("shmring: %s is not a regular file", path)
	case int(st.Uid) != os.Geteuid():
		return nil, fmt.Errorf("shmring: %s is owned by uid %d, not %d", path, st.Uid, os.Geteuid())
	case st.Mode&0o777 != 0o600:
		return nil, fmt.Errorf("shmring: %s has mode %#o, want 0600", path, st.Mode&0o777)
	case st.Size < headerBytes:
		return nil, fmt.Errorf("shmring: %s is too short for a segment", path)
	}
	var h [headerBytes]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		return nil, fmt.Errorf("shmring: read header of %s: %w", path, err)
	}
	b := h[:]
	ne := binary.NativeEndian
	capacity := ne.Uint64(b[offCapacity:])
	n := ne.Uint32(b[offAddrLen:])
	switch {
	case ne.Uint64(b[offMagic:]) != magic:
		return nil, fmt.Errorf("shmring: %s is not a segment", path)
	case ne.Uint32(b[offVersion:]) != layoutVersion || ne.Uint32(b[offHeader:]) != headerBytes:
		return nil, fmt.Errorf("shmring: %s has layout version %d, want %d", path, ne.Uint32(b[offVersion:]), layoutVersion)
	case capacity == 0 || capacity > maxCapacity || capacity%headerBytes != 0 || st.Size != int64(headerBytes+capacity):
		return nil, fmt.Errorf("shmring: %s: capacity %d does not match its size %d", path, capacity, st.Size)
	case n > maxAddr || string(b[offAddr:offAddr+n]) != addr:
		return nil, fmt.Errorf("shmring: %s belongs to another address", path)
	}
	pid := int(ne.Uint64(b[offPid:]))
	if !ownerAlive(fd, pid) {
		return nil, fmt.Errorf("shmring: %s is stale: its owner (pid %d) is gone", path, pid)
	}
	return &peer{path: path, file: f, dev: st.Dev, ino: st.Ino, pid: pid, capacity: capacity}, nil
}

// mapPeer maps p's segment for writing.
func (p *peer) mapMem() error {
	mem, err := unix.Mmap(int(p.file.Fd()), 0, int(headerBytes+p.capacity), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("shmring: map %s: %w", p.path, err)
	}
	p.mem, p.data = mem, mem[headerBytes:]
	p.head, p.tail, p.reserve = u64(mem, offHead), u64(mem, offTail), u64(mem, offReserve)
	p.tailSeen = atomic.LoadUint64(p.tail)
	return nil
}

// same reports whether path still names p's file and its owner is alive.
func (p *peer) same() bool {
	var st unix.Stat_t
	if err := unix.Stat(p.path, &st); err != nil || st.Dev != p.dev || st.Ino != p.ino {
		return false
	}
	return ownerAlive(int(p.file.Fd()), p.pid)
}

func (p *peer) close() {
	if p.mem != nil {
		_ = unix.Munmap(p.mem)
		p.mem, p.data = nil, nil
	}
	_ = p.file.Close()
}

func u64(b []byte, off int) *uint64 { return (*uint64)(unsafe.Pointer(&b[off])) }
func u32(b []byte, off int) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }
