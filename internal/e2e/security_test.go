package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ringtrain/ringtrain/pkg/tlsutil"
	pb "github.com/ringtrain/ringtrain/proto/ringtrain/v1"
)

func tlsArgs(dir, name string) []string {
	c := tlsutil.NodeConfig(dir, name)
	return []string{"--tls-cert", c.CertFile, "--tls-key", c.KeyFile, "--tls-ca", c.CAFile}
}

// TestMutualTLS: with certificates every gRPC connection is mutual TLS and a
// run trains; a worker without a certificate cannot join, one with a
// certificate of another CA cannot either, and a client without a valid
// certificate cannot send a gradient frame to a worker's ring service.
func TestMutualTLS(t *testing.T) {
	certs, rogue := t.TempDir(), t.TempDir()
	for _, dir := range []string{certs, rogue} {
		if err := tlsutil.Generate(dir, []string{"coordinator", "w1", "w2"}, 24*time.Hour, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	c, gossip := startCoordinator(t, append([]string{"--min-workers", "2", "--dataset", "gaussian", "--hidden", "4", "--epochs", "2000", "--out", out},
		tlsArgs(certs, "coordinator")...)...)

	// No certificate: the coordinator's server refuses the handshake, so the
	// join never succeeds; the worker keeps trying, as it would for an absent
	// coordinator, and is never admitted.
	bare := startWorker(t, gossip, "--id", "bare")
	// Another CA's certificate: refused the same way.
	other := startWorker(t, gossip, append([]string{"--id", "other"}, tlsArgs(rogue, "w2")...)...)
	w1 := startWorker(t, gossip, append([]string{"--id", "w1"}, tlsArgs(certs, "w1")...)...)
	w2 := startWorker(t, gossip, append([]string{"--id", "w2"}, tlsArgs(certs, "w2")...)...)
	ring := c.waitLog(t, time.Minute, "ring formed", nil)
	if r := ring["ring"].(string); r != "w1,w2" {
		t.Fatalf("the ring is %q, want only the workers with valid certificates (w1,w2)", r)
	}
	c.waitLog(t, time.Minute, "epoch done", nil)
	if c.count("worker joined") != 2 {
		t.Fatalf("%d workers joined, want 2", c.count("worker joined"))
	}
	for _, p := range []*proc{bare, other} {
		if strings.Contains(p.output(), "joined the run") {
			t.Fatalf("%s joined without a valid certificate", p.name)
		}
	}

	// A gradient frame from a client without a certificate never reaches
	// the ring service of a worker.
	addr := w1.waitLog(t, 10*time.Second, "worker started", nil)["grpc_addr"].(string)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := pb.NewRingClient(conn).Frames(ctx)
	if err == nil {
		err = stream.Send(&pb.RingFrame{Generation: 1, Data: make([]byte, 64)})
		if err == nil {
			_, err = stream.CloseAndRecv()
		}
	}
	if err == nil {
		t.Fatal("a client without a certificate sent a ring frame")
	}
	t.Logf("plaintext ring frame refused: %v", err)
	// A client with another CA's certificate is refused too.
	rc := tlsutil.NodeConfig(rogue, "w1")
	dial, err := rc.DialOption()
	if err != nil {
		t.Fatal(err)
	}
	conn2, err := grpc.NewClient(addr, dial)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	stream2, err := pb.NewRingClient(conn2).Frames(ctx)
	if err == nil {
		err = stream2.Send(&pb.RingFrame{Generation: 1, Data: make([]byte, 64)})
		if err == nil {
			_, err = stream2.CloseAndRecv()
		}
	}
	if err == nil {
		t.Fatal("a client with another CA's certificate sent a ring frame")
	}
	_ = w2
	c.signal(t, os.Interrupt)
	c.wait(t, time.Minute)
}

// TestGossipEncryption: members share a gossip key; a worker without it
// cannot join the cluster and says why.
func TestGossipEncryption(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "gossip.key")
	os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))+"\n"), 0o600)
	c, gossip := startCoordinator(t, "--min-workers", "1", "--dataset", "gaussian", "--hidden", "4", "--epochs", "2000",
		"--gossip-key-file", keyFile, "--out", t.TempDir())
	good := startWorker(t, gossip, "--id", "keyed", "--gossip-key-file", keyFile)
	good.waitLog(t, time.Minute, "joined the run", nil)
	bad := start(t, "worker", "--join", gossip, "--id", "keyless", "--grpc-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0",
		"--gossip-fast", "--log-format", "json")
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(bad.output(), "encrypt") {
		time.Sleep(50 * time.Millisecond) // polling the log with a deadline
	}
	if strings.Contains(bad.output(), "joined the run") || !strings.Contains(bad.output(), "encrypt") {
		t.Fatalf("a worker without the gossip key joined, or did not say why:\n%s", bad.output())
	}
	if c.count("worker joined") != 1 {
		t.Fatalf("%d workers joined, want only the one with the key", c.count("worker joined"))
	}
	c.signal(t, os.Interrupt)
	c.wait(t, time.Minute)
}

// TestMetricsAndTrace scrapes the coordinator's and a worker's /metrics
// while a run is going and checks the trace file it writes.
func TestMetricsAndTrace(t *testing.T) {
	out := t.TempDir()
	tracePath := filepath.Join(out, "trace.json")
	c, gossip := startCoordinator(t, "--min-workers", "1", "--dataset", "gaussian", "--hidden", "4", "--epochs", "2000",
		"--metrics-addr", "127.0.0.1:0", "--trace", tracePath, "--out", out)
	w := startWorker(t, gossip, "--metrics-addr", "127.0.0.1:0")
	c.waitLog(t, time.Minute, "epoch done", func(l map[string]any) bool { return l["epoch"].(float64) >= 3 })
	for _, p := range []*proc{c, w} {
		addr := p.waitLog(t, 10*time.Second, "metrics served", nil)["addr"].(string)
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := []string{"ringtrain_build_info", "go_goroutines"}
		if p == c {
			want = append(want, "ringtrain_steps_total", "ringtrain_step_duration_seconds_bucket", "ringtrain_world_size 1",
				"ringtrain_step_compute_duration_seconds_count", "ringtrain_epoch_accuracy_ratio", "ringtrain_ring_generation")
		} else {
			want = append(want, "ringtrain_worker_steps_total", "ringtrain_worker_compute_duration_seconds_bucket")
		}
		for _, m := range want {
			if !strings.Contains(string(body), m) {
				t.Fatalf("%s metrics lack %s:\n%s", p.name, m, body)
			}
		}
	}
	c.signal(t, os.Interrupt)
	c.wait(t, time.Minute)
	raw, err := os.ReadFile(tracePath)
	if err != nil {
		t.Fatal(err)
	}
	var tr struct {
		TraceEvents []struct {
			Name string  `json:"name"`
			Ph   string  `json:"ph"`
			Dur  float64 `json:"dur"`
		} `json:"traceEvents"`
	}
	if err := json.Unmarshal(raw, &tr); err != nil {
		t.Fatalf("trace is not JSON: %v", err)
	}
	spans := map[string]int{}
	for _, e := range tr.TraceEvents {
		if e.Ph == "X" {
			spans[e.Name]++
		}
	}
	if spans["compute"] == 0 || spans["allreduce"] == 0 {
		t.Fatalf("trace spans %v: no compute or all-reduce spans", spans)
	}
}
