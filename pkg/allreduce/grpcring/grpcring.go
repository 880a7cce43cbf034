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
// Payloads travel as raw little-endian float32 bytes in a protobuf bytes field.
// Flow-control windows are raised well above gRPC's 64 KiB default so that
// several frames are in flight on loopback and LAN links, and the server's
// MaxRecvMsgSize is set just above the frame size so an oversized frame is
// refused by gRPC itself (the service checks again, in case the server was built
// with other options).
package grpcring

import (
	"context"
	"errors"
	"fmt"
	"io"
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
// which handles ring frames with a single copy and passes every other message
// to gRPC's standard proto codec, so other services on the server are not
// affected. MaxRecvMsgSize applies to every service of the server; a server that
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
	inbox chan *ringtrainv1.RingFrame
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
	addr   string
	conn   *grpc.ClientConn
	stream grpc.ClientStreamingClient[ringtrainv1.RingFrame, ringtrainv1.FramesSummary]
	cancel context.CancelFunc
	broken atomic.Bool
}

// NewService returns a Service; register it on a grpc.Server with Register.
func NewService(opts Options) *Service {
	opts = opts.withDefaults()
	life, shutdown := context.WithCancel(context.Background())
	return &Service{
		opts:     opts,
		codec:    newCodec(),
		inbox:    make(chan *ringtrainv1.RingFrame, opts.InboxFrames),
		life:     life,
		shutdown: shutdown,
		closed:   life.Done(),
	}
}

// Register registers the Ring service on r (a grpc.Server built with s.ServerOptions()).
func (s *Service) Register(r grpc.ServiceRegistrar) { ringtrainv1.RegisterRingServer(r, s) }

// Frames implements ringtrainv1.RingServer: it moves frames of one incoming
// stream into the inbox, blocking (and so applying flow control) while it is full.
func (s *Service) Frames(stream grpc.ClientStreamingServer[ringtrainv1.RingFrame, ringtrainv1.FramesSummary]) error {
	var frames, bytes uint64
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&ringtrainv1.FramesSummary{Frames: frames, Bytes: bytes})
		}
		if err != nil {
			return err
		}
		if len(m.Data) > s.opts.MaxFrameBytes || len(m.Data)%4 != 0 {
			return status.Errorf(codes.InvalidArgument, "ring frame (generation %d step %d round %d seq %d) carries %d bytes: want a multiple of 4 up to %d",
				m.Generation, m.Step, m.Round, m.Seq, len(m.Data), s.opts.MaxFrameBytes)
		}
		select {
		case s.inbox <- m:
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-s.closed:
			return status.Error(codes.Unavailable, "ring service closed")
		}
		frames++
		bytes += uint64(len(m.Data))
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

// open dials addr and opens the Frames stream, waiting until ctx ends for the
// neighbour to accept it.
func (s *Service) open(ctx context.Context, addr string, dialOpts []grpc.DialOption) (*outStream, error) {
	conn, err := grpc.NewClient(addr, append(DialOptions(s.opts.MaxFrameBytes), dialOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("grpcring: dial %s: %w", addr, err)
	}
	streamCtx, cancel := context.WithCancel(s.life)
	stop := context.AfterFunc(ctx, cancel)
	stream, err := ringtrainv1.NewRingClient(conn).Frames(streamCtx, grpc.WaitForReady(true), grpc.ForceCodecV2(s.codec))
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
	return &outStream{addr: addr, conn: conn, stream: stream, cancel: cancel}, nil
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
	msg   ringtrainv1.RingFrame
	frame allreduce.Frame
}

var _ allreduce.Transport = (*Transport)(nil)

// Send sends f to the right neighbour. If ctx ends while gRPC flow control
// holds the frame back (a stalled neighbour), the stream is cancelled, Send
// returns ctx's error, and the next Connect opens a new stream.
func (t *Transport) Send(ctx context.Context, f *allreduce.Frame) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("grpcring: send to %s: %w", t.out.addr, context.Cause(ctx))
	}
	t.msg.Generation, t.msg.Step, t.msg.Round, t.msg.Seq, t.msg.Offset, t.msg.Data = f.Generation, f.Step, f.Round, f.Seq, f.Offset, f.Data
	o := t.out
	stop := context.AfterFunc(ctx, func() {
		o.broken.Store(true)
		o.cancel()
	})
	err := o.stream.Send(&t.msg)
	t.msg.Data = nil // gRPC has serialised the message; do not keep the caller's buffer
	if !stop() {
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

// Recv returns the next frame from the left neighbour, silently dropping frames
// of older generations. The frame is valid until the next Recv.
func (t *Transport) Recv(ctx context.Context) (*allreduce.Frame, error) {
	if t.frame.Data != nil {
		// The caller is done with the previous frame: recycle its payload.
		b := t.frame.Data[:0]
		t.svc.codec.data.Put(&b)
		t.frame.Data = nil
	}
	for {
		select {
		case m := <-t.svc.inbox:
			if m.Generation < t.gen {
				b := m.Data[:0]
				t.svc.codec.data.Put(&b)
				continue
			}
			t.frame = allreduce.Frame{Generation: m.Generation, Step: m.Step, Round: m.Round, Seq: m.Seq, Offset: m.Offset, Data: m.Data}
			return &t.frame, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("grpcring: receive: %w", context.Cause(ctx))
		case <-t.svc.closed:
			return nil, errors.New("grpcring: receive: service closed")
		}
	}
}
