// Package membership tells the coordinator and the workers who is in the cluster:
// discovery and failure detection over gossip (hashicorp/memberlist), behind a
// small Cluster interface with an in-memory twin for tests.
//
// # What is gossiped
//
// Every node advertises a Meta (role, gRPC address, protocol version, ID) as
// memberlist node metadata, encoded as JSON with one-letter keys
// ({"r":"worker","g":"10.0.0.7:7000","p":1,"i":"w-7"}) and limited to
// MaxMetaSize (512) bytes; Start refuses a Meta that does not fit and names the
// long field. memberlist itself exchanges alive/suspect/dead messages over UDP
// (piggy-backed on probes and gossip), and full state by TCP push/pull on join and
// every push/pull interval. Config.AcceptMeta vets every remote Meta: a refused
// node never enters Members or Events, the refusal is logged with its error text,
// and a node whose own Join is refused gets that error from Start (so a worker of
// another protocol version stops with a message that says what differs). With
// Config.SecretKey all gossip is AES-GCM encrypted and nodes without the key can
// neither join nor be heard.
//
// # Joining
//
// A node needs one address to join. Join entries may be DNS names; memberlist
// resolves them on every attempt and contacts every address a name resolves to
// (names with a dot are first asked, over TCP, of the first nameserver in
// Config.DNSConfigPath, then of the Go resolver), so a Kubernetes headless Service
// name works. Start retries with exponential backoff (50 ms doubling to 2 s, with
// jitter) until another member is known or its context ends, because the
// coordinator may start after the workers. A join that only reached the node
// itself does not count.
//
// # Timings and failure detection
//
// Each node probes one member every ProbeInterval (round robin over a shuffled
// list): a UDP ping that must be acked within ProbeTimeout, then indirect pings
// through other members and a TCP ping until the interval ends. A member that
// fails a probe becomes suspect and is declared dead unless it refutes within the
// suspicion timeout, SuspicionMult * max(1, log10(N)) * ProbeInterval; when at
// least SuspicionMult-2 other members could confirm, the timer starts at
// SuspicionMaxTimeoutMult (6) times that and shrinks as confirmations arrive. The
// death is then gossiped every GossipInterval. So a crashed node is reported by
// every member after about one or two probe intervals plus the suspicion timeout:
// with the LAN defaults (probe 1 s, timeout 500 ms, SuspicionMult 4, gossip
// 200 ms, TCP 10 s) about 5-6 s in a cluster of fewer than ten nodes; with Fast
// (probe 100 ms, timeout 50 ms, SuspicionMult 4, maximum multiplier 2, gossip
// 20 ms, TCP 1 s, push/pull 2 s) about 0.6 s on loopback. Shorter timings detect
// sooner but suspect live nodes that are slow (GC pauses, a loaded machine) more
// often; a suspected live node refutes and stays, a node wrongly declared dead
// rejoins, which the coordinator sees as a Leave then a Join. A gRPC error on the
// ring is a faster failure signal than gossip; gossip is the backstop.
//
// # Graceful leave versus failure
//
// memberlist v0.7.0 does not tell its event delegate whether a node left or
// died (Node.State is shadowed by an internal field and always reads
// StateAlive: hashicorp/memberlist#293). So Leave first sends every live member a
// leave intent over TCP and waits for their acks, then broadcasts memberlist's
// leave. A member that got the intent reports the departure as an EventLeave with
// Failed=false; otherwise Failed=true (a crash, or an intent that was lost).
//
// # Events
//
// Events() is a buffered channel (DefaultEventBuffer) that never blocks
// memberlist's goroutines. If the consumer falls that far behind, the backlog is
// discarded and replaced by one EventResync: re-read Members(), which already
// reflects everything dropped. Events are hints, Members() is the truth; handle
// them idempotently (a Join for a member already known, a Leave for one already
// gone). A node's stream starts with its own EventJoin. The channel is closed by
// Shutdown and Leave.
//
// # The in-memory twin
//
// InmemHub, like hashicorp/raft's InmemTransport, lets tests of the coordinator
// core run without sockets or timers: members join a hub, and InmemHub.Fail,
// InmemHub.Leave and InmemHub.Update deliver Leave (Failed true or false) and
// Update events to every live member synchronously, in call order, so a test
// reads them back deterministically.
package membership
