package membership

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dnsServer serves A records for one name over TCP on loopback (memberlist asks
// the first nameserver of Config.DNSConfigPath over TCP, type ANY, for names
// with a dot) and returns a resolv.conf that points at it.
func dnsServer(t *testing.T, name string, ips ...string) (resolvConf string, queries *atomic.Int64) {
	t.Helper()
	queries = new(atomic.Int64)
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, r *dns.Msg) {
		queries.Add(1)
		resp := new(dns.Msg)
		resp.SetReply(r)
		for _, q := range r.Question {
			if !strings.EqualFold(q.Name, dns.Fqdn(name)) {
				continue
			}
			for _, ip := range ips {
				resp.Answer = append(resp.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1},
					A:   net.ParseIP(ip),
				})
			}
		}
		_ = w.WriteMsg(resp)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Handler: mux}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	resolvConf = filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolvConf, []byte("nameserver "+ln.Addr().String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return resolvConf, queries
}

func TestJoinThroughNameWithSeveralAddresses(t *testing.T) {
	// Two separate single-node clusters on 127.0.0.2 and 127.0.0.3, same port.
	s1, _ := testNode(t, "seed1", RoleCoordinator, 1, nil, func(c *Config) { c.BindAddr = "127.0.0.2:0" })
	_, port, err := net.SplitHostPort(s1.GossipAddr())
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := testNode(t, "seed2", RoleWorker, 1, nil, func(c *Config) { c.BindAddr = "127.0.0.3:" + port })

	tests := []struct {
		name      string
		ips       []string
		wantNames string
	}{
		// The joiner learns both seeds only if it contacted both addresses.
		{"both addresses are contacted", []string{"127.0.0.2", "127.0.0.3"}, "joiner-both,seed1,seed2"},
		// A dead address first does not stop the join.
		{"dead address is skipped", []string{"127.0.0.4", "127.0.0.2"}, "joiner-skip,seed1,seed2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host := "members.ringtrain.test"
			conf, queries := dnsServer(t, host, tc.ips...)
			name := strings.Split(tc.wantNames, ",")[0]
			j, _ := testNode(t, name, RoleWorker, 1, []string{net.JoinHostPort(host, port)},
				func(c *Config) { c.DNSConfigPath = conf })
			if queries.Load() == 0 {
				t.Fatal("memberlist did not ask the configured DNS server")
			}
			// After the first subtest the seeds are one cluster, so the
			// second only shows that the dead address did not fail the join.
			waitFor(t, fastDetect, sees(j, tc.wantNames))
			waitFor(t, fastDetect, sees(s2, tc.wantNames))
			if err := j.Leave(t.Context()); err != nil { // so the next subtest need not wait for failure detection
				t.Fatal(err)
			}
		})
	}
}

func TestJoinThroughLocalhost(t *testing.T) {
	// "localhost" has no dot: memberlist skips its TCP DNS lookup and uses the Go
	// resolver (/etc/hosts), joining every address returned that answers.
	a, _ := testNode(t, "a", RoleCoordinator, 1, nil, nil)
	_, port, _ := net.SplitHostPort(a.GossipAddr())
	addrs, err := net.LookupHost("localhost")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("localhost resolves to %v here", addrs)
	b, _ := testNode(t, "b", RoleWorker, 1, []string{net.JoinHostPort("localhost", port)}, nil)
	waitFor(t, fastDetect, sees(b, "a,b"))
}

// errProtocol is what the test's AcceptMeta wraps, to check errors.Is through Start.
var errProtocol = errors.New("protocol version mismatch")

func requireProtocol(want uint32) func(Meta) error {
	return func(m Meta) error {
		if m.Protocol != want {
			return fmt.Errorf("%w: node %q speaks protocol %d, this cluster %d", errProtocol, m.ID, m.Protocol, want)
		}
		return nil
	}
}

func TestAcceptMetaRefusesOtherProtocol(t *testing.T) {
	coord, coordLog := testNode(t, "coord", RoleCoordinator, 1, nil, func(c *Config) { c.AcceptMeta = requireProtocol(1) })

	// A v2 worker without its own check: its Join completes (the coordinator
	// sends its state before merging), but the coordinator refuses it.
	testNode(t, "w-v2", RoleWorker, 2, []string{coord.GossipAddr()}, nil)
	waitFor(t, fastDetect, func() string {
		if _, ok := coordLog.find("WARN", "refused node", "w-v2", "speaks protocol 2, this cluster 1"); !ok {
			return "coordinator did not log the refusal of w-v2 with the error text"
		}
		return ""
	})
	// A good worker joins after it: once the coordinator sees it, w-v2 had every
	// chance to get in and must still be absent.
	testNode(t, "w-v1", RoleWorker, 1, []string{coord.GossipAddr()}, func(c *Config) { c.AcceptMeta = requireProtocol(1) })
	waitFor(t, fastDetect, sees(coord, "coord,w-v1"))
	for e := range drainEvents(coord.Events()) {
		if e.Member.Name == "w-v2" {
			t.Fatalf("coordinator emitted %v for the refused node", e.Kind)
		}
	}

	// A v2 worker with the same check learns at Join, with the reason.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	m, err := Start(ctx, Config{BindAddr: "127.0.0.1:0", Join: []string{coord.GossipAddr()}, Fast: true,
		Meta: Meta{Role: RoleWorker, Protocol: 2, ID: "w-v2-strict"}, AcceptMeta: requireProtocol(2)})
	if err == nil {
		_ = m.Shutdown()
		t.Fatal("strict v2 worker joined a v1 cluster")
	}
	if !errors.Is(err, errProtocol) || !strings.Contains(err.Error(), "speaks protocol 1, this cluster 2") {
		t.Fatalf("join error does not carry the AcceptMeta error: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("refusal was retried until the deadline: %v", err)
	}
	t.Logf("strict v2 worker refused: %v", err)
	if got := memberNames(coord.Members()); got != "coord,w-v1" {
		t.Fatalf("coordinator members %q after refusals", got)
	}
}

// drainEvents returns the events buffered now, without blocking.
func drainEvents(ch <-chan Event) func(func(Event) bool) {
	return func(yield func(Event) bool) {
		for {
			select {
			case e, ok := <-ch:
				if !ok || !yield(e) {
					return
				}
			default:
				return
			}
		}
	}
}

func TestGossipEncryption(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	other := []byte("fedcba9876543210")
	withKey := func(k []byte) func(*Config) { return func(c *Config) { c.SecretKey = k } }

	a, _ := testNode(t, "a", RoleCoordinator, 1, nil, withKey(key))
	b, _ := testNode(t, "b", RoleWorker, 1, []string{a.GossipAddr()}, withKey(key))
	waitFor(t, fastDetect, sees(a, "a,b"))
	waitFor(t, fastDetect, sees(b, "a,b"))

	tests := []struct {
		name string
		key  []byte
	}{
		{"no key", nil},
		{"other key", other},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 700*time.Millisecond)
			defer cancel()
			m, err := Start(ctx, Config{BindAddr: "127.0.0.1:0", Join: []string{a.GossipAddr()}, Fast: true,
				Meta: Meta{Role: RoleWorker, Protocol: 1, ID: "intruder"}, SecretKey: tc.key})
			if err == nil {
				_ = m.Shutdown()
				t.Fatal("node joined an encrypted cluster")
			}
			t.Logf("join refused: %v", err)
		})
	}
	if got := memberNames(a.Members()); got != "a,b" {
		t.Fatalf("members after intrusion attempts: %q", got)
	}
}
