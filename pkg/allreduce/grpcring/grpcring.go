// Package grpcring is the gRPC implementation of allreduce.Transport.
//
// A worker process owns its grpc.Server and registers a Service on it (the
// receiving half: every incoming ring stream feeds one inbox). For each ring
// generation it calls Connect with its right neighbour's address, which opens,
// or keeps, ONE long-lived client stream (Ring.Frames) to that neighbour, and
// returns the Transport to pass to allreduce.AllReduce. The stream is reused
// across steps and generations while the right neighbour stays the same and the
// stream is healthy; it is reopened when the neighbour changes or after a send
// failed or was cancelled.
//
// Frames of an older generation than the Transport's are dropped on receipt
// (leftovers of an aborted step); everything else is handed to the all-reduce,
// which rejects any frame it does not expect. Hence after an aborted all-reduce
// the caller must move to a new generation before retrying.
//
// Payloads travel as raw little-endian float32 (or int64) bytes in a protobuf bytes field
// (standard RingFrame messages on the wire), but no user-space copy is made
// of them outside gRPC's own I/O buffers: the sender hands gRPC a view of the
// all-reduce buffer (Send returns once gRPC has copied it into its write
// buffer), and the receiver sums or copies straight out of gRPC's receive
// buffers (Recv returns the payload as Frame.Parts). Compression is never
// enabled. Flow-control windows are raised well above gRPC's 64 KiB default so
// that several frames are in flight on loopback and LAN links, and the
// server's MaxRecvMsgSize is set just above the frame size so an oversized
// frame is refused by gRPC itself (the service checks again, in case the
// server was built with other options).
//
// Workers on one host should talk over Unix domain sockets, which cost about
// half the CPU time of loopback TCP per byte: set Options.SocketDir to a
// directory they share, serve the grpc.Server also on Service.ListenLocal's
// listener, and keep advertising the TCP address; Connect then dials a
// neighbour's socket when it finds a live one and TCP otherwise.
package grpcring

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/status"

	"github.com/ringtrain/ringtrain/pkg/allreduce"
	ringtrainv1 "github.com/ringtrain/ringtrain/proto/ringtrain/v1"
)

const (
	// headerSlack is what a RingFrame's header fields and protobuf tags add to
	// its payload, with room to spare (the real figure is under 64 bytes).
	headerSlack = 1 << 10
	// WindowBytes is the HTTP/2 flow-control window per stream, and half the
	// per-connection window, set on both ends (gRPC's default is 64 KiB, which
	// caps a stream at one window per round trip).
	WindowBytes = 8 << 20
	// ioBufferBytes is the size of gRPC's read and write buffers per connection.
	ioBufferBytes = 1 << 20
	// retireTimeout bounds how long a replaced stream may take to drain its last
	// frames to the former neighbour before it is cancelled.
	retireTimeout = 10 * time.Second
	// releaseGrace bounds how long a Send whose stream was cancelled waits for
	// gRPC to drop its reference to the payload (it does so when it cleans up
	// the stream; a dead connection never does, but then nothing reads it).
	releaseGrace = 250 * time.Millisecond
	// probeTimeout bounds the check that a local socket has a live endpoint.
	probeTimeout = time.Second
)

// Options configures a Service. The zero value is usable.
type Options struct {
	// MaxFrameBytes is the largest frame payload accepted and the frame size the
	// message limits are set for; 0 means allreduce.DefaultFrameBytes. It must be
	// at least the allreduce.Config.FrameBytes used with the transports.
	MaxFrameBytes int
	// InboxFrames is how many received frames may wait for the all-reduce; 0
	// means 8. Beyond that, gRPC flow control pushes back on the sender.
	InboxFrames int
	// SocketDir, if not empty, is a directory the ring endpoints of one host
	// share (for example filepath.Join(os.TempDir(), "ringtrain")): ListenLocal
	// puts this Service's Unix socket there, and Connect reaches a right
	// neighbour through the neighbour's socket there, when it has one, instead
	// of TCP. On loopback this costs about half the CPU time of TCP per byte.
	SocketDir string
}

func (o Options) withDefaults() Options {
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = allreduce.DefaultFrameBytes
	}
	if o.InboxFrames <= 0 {
		o.InboxFrames = 8
	}
	return o
}

// ServerOptions returns the grpc.Server options the ring needs: flow-control
// windows, buffer sizes, a buffer pool that does not zero, a MaxRecvMsgSize just
// above the Service's MaxFrameBytes, and the Service's codec (see codec.go),
// which decodes ring frames without copying their payloads (the Service
// requires it) and passes every other message to gRPC's standard proto codec,
// so other services on the server are not affected. MaxRecvMsgSize applies to every service of the server; a server that
// must also accept larger messages may raise it (pass its own option after
// these), the Service still refuses oversized frames.
func (s *Service) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(s.opts.MaxFrameBytes + headerSlack),
		grpc.InitialWindowSize(WindowBytes),
		grpc.InitialConnWindowSize(2 * WindowBytes),
		grpc.ReadBufferSize(ioBufferBytes),
		grpc.WriteBufferSize(ioBufferBytes),
		experimental.BufferPool(newDirtyPool()),
		grpc.ForceServerCodecV2(s.codec),
	}
}

// DialOptions returns the client options Connect uses by default: plaintext
// credentials, flow-control windows, buffer sizes and message size limits for
// frames up to maxFrameBytes (0 means allreduce.DefaultFrameBytes). Options
// passed to Connect are applied after these and override them.
func DialOptions(maxFrameBytes int) []grpc.DialOption {
	if maxFrameBytes <= 0 {
		maxFrameBytes = allreduce.DefaultFrameBytes
	}
	return []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(WindowBytes),
		grpc.WithInitialConnWindowSize(2 * WindowBytes),
		grpc.WithReadBufferSize(ioBufferBytes),
		grpc.WithWriteBufferSize(ioBufferBytes),
		experimental.WithBufferPool(newDirtyPool()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(maxFrameBytes+headerSlack), grpc.MaxCallRecvMsgSize(1<<20)),
	}
}

// Service is one worker's end of the ring: the gRPC server half (incoming frames
// from the left neighbour) and the client stream to the right neighbour. Use one
// Service per worker and run one all-reduce at a time on it.
type Service struct {
	ringtrainv1.UnimplementedRingServer

	opts  Options
	codec *codec
	inbox chan *inFrame
	// spare recycles received frames (and their scratch slices) between the
	// Frames handlers and Transport.Recv.
	spare chan *inFrame
	// life is the Service's lifetime: every outgoing stream derives from it and
	// Close cancels it; closed is its Done channel.
	life     context.Context
	shutdown context.CancelFunc
	closed   <-chan struct{}
	wg       sync.WaitGroup // retiring streams

	mu  sync.Mutex
	out *outStream // current stream to the right neighbour; nil before Connect
}

// outStream is a client stream to one right neighbour, on its own connection.
type outStream struct {
	addr   string // the neighbour's advertised address
	target string // what was dialled: addr, or its local Unix socket
	conn   *grpc.ClientConn
	stream grpc.ClientStreamingClient[ringtrainv1.RingFrame, ringtrainv1.FramesSummary]
	ctx    context.Context // the stream's context; done once it is cancelled
	cancel context.CancelFunc
	broken atomic.Bool
	// release learns when gRPC is done with the payload of the frame being sent.
	release *releaser
}

// NewService returns a Service; register it on a grpc.Server with Register.
func NewService(opts Options) *Service {
	opts = opts.withDefaults()
	life, shutdown := context.WithCancel(context.Background())
	return &Service{
		opts:     opts,
		codec:    newCodec(),
		inbox:    make(chan *inFrame, opts.InboxFrames),
		spare:    make(chan *inFrame, opts.InboxFrames+4),
		life:     life,
		shutdown: shutdown,
		closed:   life.Done(),
	}
}

// Register registers the Ring service on r (a grpc.Server built with s.ServerOptions()).
func (s *Service) Register(r grpc.ServiceRegistrar) { ringtrainv1.RegisterRingServer(r, s) }

// Frames implements ringtrainv1.RingServer: it moves frames of one incoming
// stream into the inbox, blocking (and so applying flow control) while it is
// full. The payloads stay in gRPC's receive buffers (see codec), so the server
// must use the Service's codec (s.ServerOptions()).
func (s *Service) Frames(stream grpc.ClientStreamingServer[ringtrainv1.RingFrame, ringtrainv1.FramesSummary]) error {
	var frames, bytes uint64
	for {
		m := s.spareFrame()
		err := stream.RecvMsg(m)
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&ringtrainv1.FramesSummary{Frames: frames, Bytes: bytes})
		}
		if err != nil {
			return err
		}
		if m.n > s.opts.MaxFrameBytes || m.n%4 != 0 {
			err := status.Errorf(codes.InvalidArgument, "ring frame (generation %d step %d round %d seq %d) carries %d bytes: want a multiple of 4 up to %d",
				m.generation, m.step, m.round, m.seq, m.n, s.opts.MaxFrameBytes)
			m.free()
			return err
		}
		n := m.n // m belongs to the receiver once it is in the inbox
		select {
		case s.inbox <- m:
		case <-stream.Context().Done():
			m.free()
			return stream.Context().Err()
		case <-s.closed:
			m.free()
			return status.Error(codes.Unavailable, "ring service closed")
		}
		frames++
		bytes += uint64(n)
	}
}

// spareFrame returns a recycled received frame, or a new one.
func (s *Service) spareFrame() *inFrame {
	select {
	case m := <-s.spare:
		return m
	default:
		return new(inFrame)
	}
}

// recycle releases m's receive buffers and keeps m for reuse.
func (s *Service) recycle(m *inFrame) {
	m.free()
	select {
	case s.spare <- m:
	default:
	}
}

// Connect returns the Transport for ring generation generation, whose right
// neighbour listens at rightAddr. It keeps the current stream when rightAddr is
// unchanged and the stream healthy, and otherwise dials rightAddr (with
// DialOptions(MaxFrameBytes) followed by dialOpts) and opens a new stream,
// waiting for the neighbour to be reachable until ctx ends. The replaced stream
// is closed once its last frames are delivered. Do not call Connect while an
// all-reduce is running on this Service.
func (s *Service) Connect(ctx context.Context, rightAddr string, generation uint64, dialOpts ...grpc.DialOption) (*Transport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		return nil, fmt.Errorf("grpcring: connect to %s: service closed", rightAddr)
	default:
	}
	if o := s.out; o == nil || o.addr != rightAddr || o.broken.Load() {
		if o != nil {
			s.retire(o)
			s.out = nil
		}
		o, err := s.open(ctx, rightAddr, dialOpts)
		if err != nil {
			return nil, err
		}
		s.out = o
	}
	return &Transport{svc: s, out: s.out, gen: generation}, nil
}

// LocalSocketPath returns the path of the Unix socket, under dir, of the ring
// endpoint whose advertised gRPC address is addr. The name is a hash of addr,
// so a peer that knows only the address finds the socket.
func LocalSocketPath(dir, addr string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(addr))
	return filepath.Join(dir, fmt.Sprintf("ring-%016x.sock", h.Sum64()))
}

// ListenLocal listens on the Unix socket of the endpoint advertised as addr
// (LocalSocketPath(Options.SocketDir, addr)), creating the directory if needed
// and replacing a stale socket file that nobody accepts on. Serve the
// Service's grpc.Server on the returned listener too (grpc.Server.Serve can run
// on several listeners); closing the listener (Server.Stop does) removes the
// socket file. Peers on the same host that share SocketDir then reach this
// Service through the socket.
func (s *Service) ListenLocal(addr string) (net.Listener, error) {
	if s.opts.SocketDir == "" {
		return nil, errors.New("grpcring: listen on a local socket: Options.SocketDir is not set")
	}
	if err := os.MkdirAll(s.opts.SocketDir, 0o700); err != nil {
		return nil, fmt.Errorf("grpcring: local socket directory: %w", err)
	}
	path := LocalSocketPath(s.opts.SocketDir, addr)
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, probeTimeout); err == nil {
			_ = c.Close()
			return nil, fmt.Errorf("grpcring: local socket %s of %s is in use by a live endpoint", path, addr)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("grpcring: remove stale local socket %s of %s: %w", path, addr, err)
		}
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("grpcring: listen on local socket %s of %s: %w", path, addr, err)
	}
	return lis, nil
}

// target returns the gRPC target to dial for rightAddr: its local Unix socket
// when SocketDir is set and something accepts on the socket, else rightAddr.
func (s *Service) target(rightAddr string) string {
	if s.opts.SocketDir == "" || strings.HasPrefix(rightAddr, "unix:") {
		return rightAddr
	}
	path := LocalSocketPath(s.opts.SocketDir, rightAddr)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return rightAddr
	}
	// A stale socket (its endpoint was killed) refuses at once; fall back to TCP.
	c, err := net.DialTimeout("unix", path, probeTimeout)
	if err != nil {
		return rightAddr
	}
	_ = c.Close()
	return "unix://" + path
}

// open dials addr and opens the Frames stream, waiting until ctx ends for the
// neighbour to accept it.
func (s *Service) open(ctx context.Context, addr string, dialOpts []grpc.DialOption) (*outStream, error) {
	target := s.target(addr)
	conn, err := grpc.NewClient(target, append(DialOptions(s.opts.MaxFrameBytes), dialOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("grpcring: dial %s: %w", addr, err)
	}
	streamCtx, cancel := context.WithCancel(s.life)
	stop := context.AfterFunc(ctx, cancel)
	// MaxRetryRPCBufferSize(0) commits the stream at its first message, so gRPC
	// keeps no reference to sent payloads for replay (see Transport.Send).
	stream, err := ringtrainv1.NewRingClient(conn).Frames(streamCtx, grpc.WaitForReady(true), grpc.ForceCodecV2(s.codec), grpc.MaxRetryRPCBufferSize(0))
	if !stop() && err == nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		cancel()
		_ = conn.Close()
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", context.Cause(ctx), err)
		}
		return nil, fmt.Errorf("grpcring: open ring stream to %s: %w", addr, err)
	}
	return &outStream{addr: addr, target: target, conn: conn, stream: stream, ctx: streamCtx, cancel: cancel, release: newReleaser()}, nil
}

// retire closes o in the background: half-close, wait for the server to
// acknowledge (so the frames in flight arrive), then cancel and close the connection.
func (s *Service) retire(o *outStream) {
	s.wg.Go(func() {
		timer := time.AfterFunc(retireTimeout, o.cancel) // Close cancels it sooner
		_, _ = o.stream.CloseAndRecv()
		timer.Stop()
		o.cancel()
		_ = o.conn.Close()
	})
}

// Close closes the stream to the right neighbour, unblocks pending Recv calls
// and incoming streams, and waits for replaced streams to finish. It does not
// stop the grpc.Server, which the caller owns.
func (s *Service) Close() error {
	s.shutdown()
	s.mu.Lock()
	if s.out != nil {
		s.out.cancel()
		_ = s.out.conn.Close()
		s.out = nil
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Transport is the allreduce.Transport of one ring generation on a Service.
type Transport struct {
	svc   *Service
	out   *outStream
	gen   uint64
	msg   outFrame
	last  *inFrame // returned by the previous Recv, recycled by the next
	frame allreduce.Frame
}

var _ allreduce.Transport = (*Transport)(nil)

// Target returns the gRPC target the Transport sends to: the right
// neighbour's advertised address, or its local Unix socket ("unix://path",
// see Options.SocketDir).
func (t *Transport) Target() string { return t.out.target }

// Send sends f to the right neighbour. The payload is not copied: gRPC writes
// it out of f.Data directly, and Send returns once gRPC has copied it into its
// write buffer and released it (HTTP/2 flow control may hold it back until the
// neighbour has read earlier frames). If ctx ends first (a stalled neighbour),
// the stream is cancelled, Send returns ctx's error, and the next Connect opens
// a new stream.
func (t *Transport) Send(ctx context.Context, f *allreduce.Frame) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("grpcring: send to %s: %w", t.out.addr, context.Cause(ctx))
	}
	o := t.out
	t.msg = outFrame{generation: f.Generation, step: f.Step, round: f.Round, seq: f.Seq, offset: f.Offset, data: f.Data, release: o.release}
	stop := context.AfterFunc(ctx, func() {
		o.broken.Store(true)
		o.cancel()
	})
	err := o.stream.SendMsg(&t.msg)
	if t.msg.viewed {
		// Whatever happened, gRPC may still read f.Data until it releases it.
		t.awaitRelease(o)
	}
	t.msg = outFrame{}
	if !stop() {
		// The AfterFunc runs in its own goroutine and may not have run yet:
		// break the stream here too, so that no later Connect reuses it before
		// the AfterFunc cancels it.
		o.broken.Store(true)
		o.cancel()
		return fmt.Errorf("grpcring: send to %s: %w", o.addr, context.Cause(ctx))
	}
	if err != nil {
		o.broken.Store(true)
		if errors.Is(err, io.EOF) {
			// The stream ended; its status says why.
			if _, rerr := o.stream.CloseAndRecv(); rerr != nil {
				err = rerr
			}
		}
		return fmt.Errorf("grpcring: send to %s: %w", o.addr, err)
	}
	return nil
}

// awaitRelease waits until gRPC has dropped its reference to the payload
// view of the frame just sent. gRPC does so once the frame is in its write
// buffer, or when it cleans up a cancelled stream; the wait after cancellation
// is bounded by releaseGrace, since a connection that died with the frame
// queued never releases it (and never reads it again either).
func (t *Transport) awaitRelease(o *outStream) {
	select {
	case <-o.release.ch:
		return
	case <-o.ctx.Done():
	}
	timer := time.NewTimer(releaseGrace)
	defer timer.Stop()
	select {
	case <-o.release.ch:
	case <-timer.C:
	}
}

// Recv returns the next frame from the left neighbour, silently dropping frames
// of older generations. The payload is in the frame's Parts: views into gRPC's
// receive buffers, valid until the next Recv.
func (t *Transport) Recv(ctx context.Context) (*allreduce.Frame, error) {
	if t.last != nil {
		// The caller is done with the previous frame: release its buffers.
		t.svc.recycle(t.last)
		t.last = nil
		t.frame = allreduce.Frame{}
	}
	for {
		select {
		case m := <-t.svc.inbox:
			if m.generation < t.gen {
				t.svc.recycle(m)
				continue
			}
			t.last = m
			t.frame = allreduce.Frame{Generation: m.generation, Step: m.step, Round: m.round, Seq: m.seq, Offset: m.offset, Parts: m.parts}
			return &t.frame, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("grpcring: receive: %w", context.Cause(ctx))
		case <-t.svc.closed:
			return nil, errors.New("grpcring: receive: service closed")
		}
	}
}
