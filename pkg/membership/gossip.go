package membership

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// DefaultGossipPort is the gossip port used when Config.BindAddr is empty.
const DefaultGossipPort = 7946

// Config configures Start. Zero timing fields take memberlist's LAN defaults, or
// the Fast preset's values when Fast is set.
type Config struct {
	// Name is the unique node name; default: Meta.ID.
	Name string
	// BindAddr is the IP:port for gossip (TCP and UDP). Port 0 picks a free port
	// (see Memberlist.GossipAddr); an empty host binds all interfaces. Default
	// "0.0.0.0:7946".
	BindAddr string
	// Advertise is an optional host:port that others should dial (NAT, containers).
	// A host name is resolved at Start. Empty: derived from the bind address.
	// With a port-0 bind, memberlist advertises the bound port whatever is given.
	Advertise string
	// Join lists addresses of existing members (host:port; a DNS name may resolve
	// to several members, all of which are contacted). Empty: start a new cluster.
	Join []string
	// Meta is what this node advertises; it must encode to at most MaxMetaSize bytes.
	Meta Meta
	// SecretKey is an optional gossip encryption key (AES, 16, 24 or 32 bytes).
	// Members without the same key cannot talk to this one.
	SecretKey []byte
	// Logger receives memberlist's own log lines at debug level, and this
	// package's warnings. Nil discards.
	Logger *slog.Logger

	// Fast selects timings for tests on loopback: a crashed node is declared dead
	// in about one second. Explicit timing fields still override it.
	Fast bool
	// ProbeInterval is how often this node probes one random member (LAN: 1 s).
	ProbeInterval time.Duration
	// ProbeTimeout is how long a direct probe waits for an ack before indirect
	// probes are tried (LAN: 500 ms).
	ProbeTimeout time.Duration
	// SuspicionMult scales the time a suspected node has to refute before it is
	// declared dead: SuspicionMult * max(1, log10(N)) * ProbeInterval (LAN: 4).
	SuspicionMult int
	// GossipInterval is how often queued broadcasts are gossiped (LAN: 200 ms).
	GossipInterval time.Duration
	// TCPTimeout bounds TCP push/pull (join, anti-entropy) and TCP fallback
	// probes (LAN: 10 s).
	TCPTimeout time.Duration

	// AcceptMeta, when set, is called on every remote node's meta (alive messages
	// and join merges); a non-nil error refuses the node at gossip level: it never
	// appears in Members or Events here. The error text is logged. If this node's
	// own Join is refused this way, Start fails with an error wrapping it. It is
	// called often (on every alive message and push/pull): keep it cheap and pure.
	AcceptMeta func(Meta) error

	// DNSConfigPath is the resolv.conf whose first nameserver memberlist asks
	// (over TCP, query type ANY) for Join names that contain a dot, before
	// falling back to the Go resolver. Default "/etc/resolv.conf". The nameserver
	// may be given as ip:port.
	DNSConfigPath string
}

// fastPreset holds the Fast timings. With N < 10 nodes, detection of a crashed
// node takes at most about 2 probe rounds plus SuspicionMult*ProbeInterval.
func fastPreset(c *memberlist.Config) {
	c.ProbeInterval = 100 * time.Millisecond
	c.ProbeTimeout = 50 * time.Millisecond
	c.SuspicionMult = 4
	c.SuspicionMaxTimeoutMult = 2
	c.GossipInterval = 20 * time.Millisecond
	c.TCPTimeout = time.Second
	c.PushPullInterval = 2 * time.Second
	c.GossipToTheDeadTime = 2 * time.Second
}

// Memberlist is a Cluster backed by hashicorp/memberlist.
type Memberlist struct {
	ml     *memberlist.Memberlist
	events *eventQueue
	del    *delegate
	self   Member

	joinAddrs []string // the addresses given in Config.Join

	mu       sync.Mutex
	shutdown bool
}

// Rejoin contacts the addresses this node joined through once more (a
// single attempt, no retries). It merges this node back into a cluster it
// lost touch with, for instance a restarted coordinator that now runs a new
// cluster of one at the same address. It is a no-op without join addresses.
func (m *Memberlist) Rejoin() error {
	if len(m.joinAddrs) == 0 {
		return nil
	}
	if _, err := m.ml.Join(m.joinAddrs); err != nil {
		return fmt.Errorf("membership: rejoin %s: %w", strings.Join(m.joinAddrs, ","), err)
	}
	return nil
}

var _ Cluster = (*Memberlist)(nil)

// Start creates the local node and, if cfg.Join is not empty, joins the cluster,
// retrying with backoff until at least one other member is known or ctx is done
// (the coordinator may start after a worker). A refusal by AcceptMeta during the
// join is final. On error nothing is left running.
func Start(ctx context.Context, cfg Config) (*Memberlist, error) {
	mc, d, err := buildConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	q := newEventQueue(DefaultEventBuffer)
	d.events = q
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("membership: create node %q on %s: %w", mc.Name, cfg.BindAddr, err)
	}
	d.ml.Store(ml)
	local := ml.LocalNode()
	m := &Memberlist{
		ml:     ml,
		events: q,
		del:    d,
		self:   Member{Name: local.Name, GossipAddr: local.Address(), Meta: cfg.Meta},
	}
	m.joinAddrs = append([]string(nil), cfg.Join...)
	if len(cfg.Join) > 0 {
		if err := m.join(ctx, cfg.Join); err != nil {
			_ = m.Shutdown()
			return nil, err
		}
	}
	return m, nil
}

// buildConfig validates cfg and turns it into a memberlist configuration.
func buildConfig(ctx context.Context, cfg Config) (*memberlist.Config, *delegate, error) {
	name := cfg.Name
	if name == "" {
		name = cfg.Meta.ID
	}
	if name == "" {
		return nil, nil, errors.New("membership: config: Name and Meta.ID are both empty")
	}
	if cfg.Meta.Role == "" {
		return nil, nil, fmt.Errorf("membership: config: node %q: Meta.Role is empty", name)
	}
	meta, err := cfg.Meta.MarshalBinary()
	if err != nil {
		return nil, nil, fmt.Errorf("membership: config: node %q: %w", name, err)
	}
	switch len(cfg.SecretKey) {
	case 0, 16, 24, 32:
	default:
		return nil, nil, fmt.Errorf("membership: config: SecretKey is %d bytes, want 16, 24 or 32", len(cfg.SecretKey))
	}

	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	mc := memberlist.DefaultLANConfig()
	if cfg.Fast {
		fastPreset(mc)
	}
	mc.Name = name
	bind := cfg.BindAddr
	if bind == "" {
		bind = net.JoinHostPort("0.0.0.0", strconv.Itoa(DefaultGossipPort))
	}
	host, port, err := splitHostPort(bind)
	if err != nil {
		return nil, nil, fmt.Errorf("membership: config: BindAddr %q: %w", cfg.BindAddr, err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	if net.ParseIP(host) == nil {
		return nil, nil, fmt.Errorf("membership: config: BindAddr %q: host must be an IP address", cfg.BindAddr)
	}
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertisePort = port
	if cfg.Advertise != "" {
		ahost, aport, err := splitHostPort(cfg.Advertise)
		if err != nil {
			return nil, nil, fmt.Errorf("membership: config: Advertise %q: %w", cfg.Advertise, err)
		}
		if net.ParseIP(ahost) == nil {
			ips, err := net.DefaultResolver.LookupIPAddr(ctx, ahost)
			if err != nil {
				return nil, nil, fmt.Errorf("membership: config: resolve Advertise %q: %w", cfg.Advertise, err)
			}
			ahost = ips[0].IP.String()
		}
		mc.AdvertiseAddr = ahost
		if aport != 0 {
			mc.AdvertisePort = aport
		}
	}

	if cfg.ProbeInterval > 0 {
		mc.ProbeInterval = cfg.ProbeInterval
	}
	if cfg.ProbeTimeout > 0 {
		mc.ProbeTimeout = cfg.ProbeTimeout
	}
	if cfg.SuspicionMult > 0 {
		mc.SuspicionMult = cfg.SuspicionMult
	}
	if cfg.GossipInterval > 0 {
		mc.GossipInterval = cfg.GossipInterval
	}
	if cfg.TCPTimeout > 0 {
		mc.TCPTimeout = cfg.TCPTimeout
	}
	if len(cfg.SecretKey) > 0 {
		mc.SecretKey = slices.Clone(cfg.SecretKey)
	}
	if cfg.DNSConfigPath != "" {
		mc.DNSConfigPath = cfg.DNSConfigPath
	}
	mc.Logger = log.New(&logWriter{logger: logger}, "", 0)

	d := &delegate{
		name:    name,
		meta:    meta,
		accept:  cfg.AcceptMeta,
		logger:  logger,
		refused: make(map[string]string),
		leaving: make(map[string]bool),
		live:    make(map[string]Member),
	}
	mc.Delegate = d
	mc.Events = d
	mc.Alive = d
	mc.Merge = d
	return mc, d, nil
}

// splitHostPort splits "host:port"; a missing port is an error, port 0 is allowed.
func splitHostPort(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("split host:port: %w", err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	return host, int(port), nil
}

// join calls memberlist's Join until another member is known, with exponential
// backoff and jitter. memberlist re-resolves names on each attempt and contacts
// every address a name resolves to.
func (m *Memberlist) join(ctx context.Context, addrs []string) error {
	backoff := 50 * time.Millisecond
	const maxBackoff = 2 * time.Second
	var lastErr error
	for attempt := 1; ; attempt++ {
		m.del.clearJoinRefusal()
		n, err := m.ml.Join(addrs)
		if err == nil && m.ml.NumMembers() > 1 {
			m.del.logger.Debug("membership: joined", "node", m.self.Name, "contacted", n, "members", m.ml.NumMembers(), "attempt", attempt)
			return nil
		}
		if refusal := m.del.joinRefusal(); refusal != nil && err != nil {
			return fmt.Errorf("membership: join %s: refused: %w", strings.Join(addrs, ","), refusal)
		}
		if err == nil {
			err = fmt.Errorf("contacted %d address(es) but learned no other member (joined only itself?)", n)
		}
		lastErr = err
		if attempt == 1 || attempt%10 == 0 {
			// Say why the join does not succeed (nobody there yet, or a
			// refusal such as a missing gossip key), without flooding.
			m.del.logger.Warn("cannot join the gossip cluster yet; retrying", "node", m.self.Name, "join", strings.Join(addrs, ","), "attempt", attempt, "err", err)
		} else {
			m.del.logger.Debug("membership: join attempt failed", "node", m.self.Name, "attempt", attempt, "err", err)
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("membership: join %s: gave up after %d attempts (%w): last error: %w",
				strings.Join(addrs, ","), attempt, ctx.Err(), lastErr)
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// GossipAddr returns the host:port others dial to reach this node: the advertised
// address, which with a port-0 bind carries the port actually bound.
func (m *Memberlist) GossipAddr() string { return m.self.GossipAddr }

// Self returns the local member.
func (m *Memberlist) Self() Member { return m.self }

// Events returns the event channel (see Cluster.Events). It starts with this
// node's own EventJoin.
func (m *Memberlist) Events() <-chan Event { return m.events.ch }

// Members returns the live (alive or suspect) members including self, sorted by Name.
//
// The list is the delegate's own copy, kept up to date by memberlist's event
// callbacks (which run under memberlist's node lock): reading memberlist's
// node records after Members() returns races with its gossip handlers.
func (m *Memberlist) Members() []Member {
	m.del.mu.Lock()
	out := make([]Member, 0, len(m.del.live)+1)
	for _, mem := range m.del.live {
		out = append(out, mem)
	}
	m.del.mu.Unlock()
	if !slices.ContainsFunc(out, func(x Member) bool { return x.Name == m.self.Name }) {
		out = append(out, m.self)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Leave leaves gracefully, then shuts down. memberlist itself cannot tell others
// whether a node left or failed (see delegate.NotifyLeave), so Leave first tells
// every live member directly over TCP and waits for their acks (at most half the
// time left), then broadcasts memberlist's leave and waits until it has been
// gossiped. Without a ctx deadline the whole takes at most 5 s. Members that did
// not ack report the leave as a failure; that is logged, not an error.
func (m *Memberlist) Leave(ctx context.Context) error {
	m.mu.Lock()
	if m.shutdown {
		m.mu.Unlock()
		return errors.New("membership: leave: node already shut down")
	}
	m.mu.Unlock()
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, timeout/2)
	missing := m.del.announceLeave(actx, m.ml, m.self)
	cancel()
	if len(missing) > 0 {
		m.del.logger.Warn("membership: leave intent not acked; these members will report a failure",
			"node", m.self.Name, "peers", strings.Join(missing, ","))
	}
	timeout = max(timeout-time.Since(start), time.Millisecond)
	done := make(chan error, 1)
	go func() {
		// memberlist panics on Leave after Shutdown; a concurrent Shutdown
		// can win the race after the check above.
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("memberlist leave: %v", r)
			}
		}()
		done <- m.ml.Leave(timeout)
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if serr := m.Shutdown(); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("membership: leave %q: %w", m.self.Name, err)
	}
	return nil
}

// Shutdown stops gossip without announcing a leave and closes the event channel.
// It is safe to call more than once.
func (m *Memberlist) Shutdown() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shutdown {
		return nil
	}
	m.shutdown = true
	err := m.ml.Shutdown()
	m.events.close()
	if err != nil {
		return fmt.Errorf("membership: shutdown %q: %w", m.self.Name, err)
	}
	return nil
}

// toMember converts a memberlist node; undecodable meta (refused at gossip level
// anyway) leaves Meta zero.
func toMember(n *memberlist.Node) Member {
	var meta Meta
	_ = meta.UnmarshalBinary(n.Meta)
	return Member{Name: n.Name, GossipAddr: n.Address(), Meta: meta}
}

// delegate implements memberlist's Delegate, EventDelegate, AliveDelegate and
// MergeDelegate. Event callbacks run under memberlist's node lock: they must not
// call back into memberlist.
type delegate struct {
	name   string
	meta   []byte
	accept func(Meta) error
	logger *slog.Logger
	events *eventQueue

	// ml is set once memberlist.Create returns; user messages before that are ignored.
	ml atomic.Pointer[memberlist.Memberlist]

	mu      sync.Mutex
	refused map[string]string // node name -> last logged refusal text
	joinErr error             // last refusal by NotifyMerge, see joinRefusal
	leaving map[string]bool   // nodes that announced a graceful leave
	live    map[string]Member // members as of the last event callbacks
	pending map[string]bool   // our leave: peers that have not acked yet
	acked   chan struct{}     // our leave: closed when pending becomes empty
}

// maxRefusedLog bounds the de-duplication map of refusal log lines.
const maxRefusedLog = 1024

// NodeMeta returns this node's encoded meta.
func (d *delegate) NodeMeta(limit int) []byte {
	if len(d.meta) > limit {
		// Start checked against MaxMetaSize; a smaller limit would be a memberlist change.
		d.logger.Error("membership: meta exceeds memberlist's limit", "bytes", len(d.meta), "limit", limit)
		return nil
	}
	return d.meta
}

// User messages implement the leave announcement (see Memberlist.Leave):
// msgLeaveIntent carries the leaver's name and gossip address, msgLeaveAck the
// acknowledging node's name.
const (
	msgLeaveIntent byte = 1
	msgLeaveAck    byte = 2
)

// NotifyMsg handles leave intents (mark the sender as leaving, ack it) and acks
// of our own intent. It never blocks: the ack is sent from a new goroutine.
func (d *delegate) NotifyMsg(b []byte) {
	if len(b) < 2 {
		return
	}
	switch b[0] {
	case msgLeaveIntent:
		name, addr, ok := strings.Cut(string(b[1:]), "\x00")
		if !ok {
			return
		}
		d.mu.Lock()
		d.leaving[name] = true
		d.mu.Unlock()
		go d.sendAck(name, addr)
	case msgLeaveAck:
		name := string(b[1:])
		d.mu.Lock()
		if d.pending != nil && d.pending[name] {
			delete(d.pending, name)
			if len(d.pending) == 0 {
				close(d.acked)
			}
		}
		d.mu.Unlock()
	}
}

// sendAck acknowledges a leave intent over TCP.
func (d *delegate) sendAck(name, addr string) {
	ml := d.ml.Load()
	if ml == nil {
		return
	}
	to, err := nodeAt(name, addr)
	if err == nil {
		err = ml.SendReliable(to, append([]byte{msgLeaveAck}, d.name...))
	}
	if err != nil {
		d.logger.Debug("membership: ack leave intent", "node", d.name, "peer", name, "err", err)
	}
}

// nodeAt builds the minimal memberlist.Node that SendReliable needs.
func nodeAt(name, addr string) (*memberlist.Node, error) {
	host, port, err := splitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("peer %q address %q: %w", name, addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, fmt.Errorf("peer %q address %q: not an IP", name, addr)
	}
	return &memberlist.Node{Name: name, Addr: ip, Port: uint16(port)}, nil
}

// announceLeave tells every other live member over TCP that this node is leaving
// and waits until all have acked or ctx is done. It returns the peers that did
// not ack; they will report the leave as a failure.
func (d *delegate) announceLeave(ctx context.Context, ml *memberlist.Memberlist, self Member) []string {
	intent := append([]byte{msgLeaveIntent}, self.Name+"\x00"+self.GossipAddr...)
	d.mu.Lock()
	d.pending = make(map[string]bool)
	d.acked = make(chan struct{})
	var peers []*memberlist.Node
	for _, n := range ml.Members() {
		if n.Name != d.name {
			d.pending[n.Name] = true
			peers = append(peers, &memberlist.Node{Name: n.Name, Addr: n.Addr, Port: n.Port})
		}
	}
	acked := d.acked
	if len(d.pending) == 0 {
		close(d.acked)
	}
	d.mu.Unlock()
	for _, p := range peers {
		go func() {
			if err := ml.SendReliable(p, intent); err != nil {
				d.logger.Debug("membership: send leave intent", "node", d.name, "peer", p.Name, "err", err)
			}
		}()
	}
	select {
	case <-acked:
	case <-ctx.Done():
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	missing := make([]string, 0, len(d.pending))
	for name := range d.pending {
		missing = append(missing, name)
	}
	slices.Sort(missing)
	d.pending = nil
	return missing
}

// GetBroadcasts sends no user broadcasts.
func (d *delegate) GetBroadcasts(int, int) [][]byte { return nil }

// LocalState has no user state for push/pull.
func (d *delegate) LocalState(bool) []byte { return nil }

// MergeRemoteState ignores remote user state.
func (d *delegate) MergeRemoteState([]byte, bool) {}

// NotifyJoin queues an EventJoin (and forgets a stale leave mark of that name).
func (d *delegate) NotifyJoin(n *memberlist.Node) {
	mem := toMember(n)
	d.mu.Lock()
	delete(d.leaving, n.Name)
	d.live[n.Name] = mem
	d.mu.Unlock()
	d.events.push(Event{Kind: EventJoin, Member: mem})
}

// NotifyLeave queues an EventLeave. memberlist v0.7.0 does not say whether the
// node left or died (Node.State is always StateAlive here: the State field of its
// internal nodeState shadows it, hashicorp/memberlist#293), so a graceful leave is
// recognised by the leave intent the node sent before leaving.
func (d *delegate) NotifyLeave(n *memberlist.Node) {
	mem := toMember(n)
	d.mu.Lock()
	graceful := d.leaving[n.Name] || n.Name == d.name
	delete(d.leaving, n.Name)
	delete(d.live, n.Name)
	d.mu.Unlock()
	d.events.push(Event{Kind: EventLeave, Member: mem, Failed: !graceful})
}

// NotifyUpdate queues an EventUpdate.
func (d *delegate) NotifyUpdate(n *memberlist.Node) {
	mem := toMember(n)
	d.mu.Lock()
	d.live[n.Name] = mem
	d.mu.Unlock()
	d.events.push(Event{Kind: EventUpdate, Member: mem})
}

// check decodes a remote node's meta and applies AcceptMeta.
func (d *delegate) check(raw []byte) error {
	var meta Meta
	if err := meta.UnmarshalBinary(raw); err != nil {
		return err
	}
	if d.accept != nil {
		if err := d.accept(meta); err != nil {
			return err
		}
	}
	return nil
}

// logRefusal logs a refusal once per node and distinct text.
func (d *delegate) logRefusal(name, addr string, err error) {
	text := err.Error()
	d.mu.Lock()
	if d.refused[name] == text {
		d.mu.Unlock()
		return
	}
	if len(d.refused) >= maxRefusedLog {
		clear(d.refused)
	}
	d.refused[name] = text
	d.mu.Unlock()
	d.logger.Warn("membership: refused node", "node", d.name, "peer", name, "peer_addr", addr, "err", text)
}

// NotifyAlive refuses remote nodes whose meta is undecodable or not accepted.
func (d *delegate) NotifyAlive(peer *memberlist.Node) error {
	if peer.Name == d.name {
		return nil
	}
	if err := d.check(peer.Meta); err != nil {
		d.logRefusal(peer.Name, peer.Address(), err)
		return fmt.Errorf("node %q: %w", peer.Name, err)
	}
	d.mu.Lock()
	delete(d.refused, peer.Name)
	d.mu.Unlock()
	return nil
}

// NotifyMerge cancels a join merge (in either direction) when a live peer of the
// other side is refused, so that a mismatched node learns it at Join.
func (d *delegate) NotifyMerge(peers []*memberlist.Node) error {
	for _, p := range peers {
		if p.Name == d.name || (p.State != memberlist.StateAlive && p.State != memberlist.StateSuspect) {
			continue
		}
		if err := d.check(p.Meta); err != nil {
			d.logRefusal(p.Name, p.Address(), err)
			err = fmt.Errorf("node %q (%s): %w", p.Name, p.Address(), err)
			d.mu.Lock()
			d.joinErr = err
			d.mu.Unlock()
			return err
		}
	}
	return nil
}

// clearJoinRefusal forgets the last merge refusal before a join attempt.
func (d *delegate) clearJoinRefusal() {
	d.mu.Lock()
	d.joinErr = nil
	d.mu.Unlock()
}

// joinRefusal returns the merge refusal seen since clearJoinRefusal, if any. A
// refused incoming join by another node in the same window is indistinguishable;
// that rare case ends Start's retries early with that node's refusal.
func (d *delegate) joinRefusal() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.joinErr
}

// logWriter routes memberlist's log.Logger lines ("[LEVEL] memberlist: text")
// into slog at debug level, keeping the original level as an attribute.
type logWriter struct{ logger *slog.Logger }

// Write logs one line per call (log.Logger writes whole lines).
func (w *logWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\n"))
	level := ""
	if strings.HasPrefix(line, "[") {
		if i := strings.IndexByte(line, ']'); i > 0 {
			level, line = line[1:i], strings.TrimSpace(line[i+1:])
		}
	}
	w.logger.Debug(line, "source", "memberlist", "memberlist_level", level)
	return len(p), nil
}
