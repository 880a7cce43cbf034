// Package rpcnet is the network under the gRPC servers and clients of the
// coordinator and workers: real TCP, or an in-memory twin (in the spirit of
// hashicorp/raft's InmemTransport) that runs a whole cluster in one process
// without a socket.
package rpcnet

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"
)

// Network listens and dials for gRPC.
type Network interface {
	// Listen listens at addr (port 0: any free port).
	Listen(addr string) (net.Listener, error)
	// DialOptions are added to every grpc.NewClient on this network.
	DialOptions() []grpc.DialOption
}

// TCP is the real network.
type TCP struct{}

// Listen implements Network.
func (TCP) Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// DialOptions implements Network.
func (TCP) DialOptions() []grpc.DialOption { return nil }

// Inmem is an in-memory network of gRPC endpoints (grpc's bufconn): Listen
// hands out addresses 127.0.0.1:1, :2, ... that exist only inside this
// Inmem, and its dialer connects to them through memory. Nothing is sent
// on a socket. Close a listener to make its address refuse connections, as
// a crashed process would.
type Inmem struct {
	mu        sync.Mutex
	next      int
	listeners map[string]*inmemListener
}

// NewInmem returns an empty in-memory network.
func NewInmem() *Inmem { return &Inmem{listeners: map[string]*inmemListener{}} }

const inmemBuffer = 1 << 20

type inmemListener struct {
	*bufconn.Listener
	addr inmemAddr
	net  *Inmem
}

type inmemAddr string

func (a inmemAddr) Network() string { return "inmem" }
func (a inmemAddr) String() string  { return string(a) }

func (l *inmemListener) Addr() net.Addr { return l.addr }

func (l *inmemListener) Close() error {
	l.net.mu.Lock()
	if l.net.listeners[string(l.addr)] == l {
		delete(l.net.listeners, string(l.addr))
	}
	l.net.mu.Unlock()
	return l.Listener.Close()
}

// Listen implements Network. The host part of addr is ignored; port 0 gets
// a new port, another port is taken as given.
func (n *Inmem) Listen(addr string) (net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("inmem listen %q: %w", addr, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if port == "0" {
		n.next++
		port = strconv.Itoa(n.next)
	}
	a := "127.0.0.1:" + port
	if _, ok := n.listeners[a]; ok {
		return nil, fmt.Errorf("inmem listen %s: address already in use", a)
	}
	l := &inmemListener{Listener: bufconn.Listen(inmemBuffer), addr: inmemAddr(a), net: n}
	n.listeners[a] = l
	return l, nil
}

// DialOptions implements Network.
func (n *Inmem) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithContextDialer(n.dial)}
}

func (n *Inmem) dial(ctx context.Context, target string) (net.Conn, error) {
	n.mu.Lock()
	l := n.listeners[target]
	n.mu.Unlock()
	if l == nil {
		return nil, fmt.Errorf("inmem dial %s: connection refused", target)
	}
	return l.DialContext(ctx)
}
