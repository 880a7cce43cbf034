package tlsutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// recordingCreds passes server handshakes through and records their errors,
// so a test can see why the server refused a client.
type recordingCreds struct {
	credentials.TransportCredentials
	errs chan error
}

func (r recordingCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := r.TransportCredentials.ServerHandshake(c)
	if err != nil {
		select {
		case r.errs <- err:
		default: // the client's retries may refuse more than once; the first is enough
		}
	}
	return conn, info, err
}

// startServer runs a gRPC server with the health service on 127.0.0.1:0
// and returns its address and the channel of its refused handshakes.
func startServer(t *testing.T, creds credentials.TransportCredentials) (string, <-chan error) {
	t.Helper()
	return startServerOn(t, "127.0.0.1:0", creds)
}

// startServerOn is startServer listening on listenAddr.
func startServerOn(t *testing.T, listenAddr string, creds credentials.TransportCredentials) (string, <-chan error) {
	t.Helper()
	lis, err := net.Listen("tcp", listenAddr)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	srv := grpc.NewServer(grpc.Creds(recordingCreds{creds, errs}))
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), errs
}

// check calls the health service at addr with the client credentials.
func check(t *testing.T, addr string, creds credentials.TransportCredentials) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err == nil && resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health status %v", resp.Status)
	}
	return err
}

// rawClient builds client credentials from files without Validate's checks,
// as a misconfigured or hostile client would present them. Empty cert and
// key files mean no client certificate.
func rawClient(t *testing.T, certFile, keyFile, caFile string) credentials.TransportCredentials {
	t.Helper()
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("no certificate in %s", caFile)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: ServerName}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(cfg)
}

// cluster generates a CA and the given nodes in a fresh directory.
func cluster(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := Generate(dir, names, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustServer(t *testing.T, c Config) credentials.TransportCredentials {
	t.Helper()
	creds, err := c.ServerCredentials()
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

func mustClient(t *testing.T, c Config) credentials.TransportCredentials {
	t.Helper()
	creds, err := c.ClientCredentials()
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

func TestMutualTLS(t *testing.T) {
	dirA := cluster(t, "coordinator", "worker-0")
	dirB := cluster(t, "coordinator", "worker-0")
	// An expired member of cluster A: signed by A's (valid) CA two days ago,
	// valid for one hour.
	if err := Generate(dirA, []string{"expired"}, time.Hour, time.Now().Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	caA := filepath.Join(dirA, CAFileName)
	certA0, keyA0 := NodeFiles(dirA, "worker-0")
	certB0, keyB0 := NodeFiles(dirB, "worker-0")
	certExp, keyExp := NodeFiles(dirA, "expired")

	tests := []struct {
		name string
		// server is the server's configuration; client builds the client's credentials.
		server Config
		client func(t *testing.T) credentials.TransportCredentials
		// serverErr, clientErr: substrings of the refusal, "" when accepted.
		serverErr, clientErr string
	}{
		{
			name:   "member accepted",
			server: NodeConfig(dirA, "coordinator"),
			client: func(t *testing.T) credentials.TransportCredentials {
				return mustClient(t, NodeConfig(dirA, "worker-0"))
			},
		},
		{
			name:   "worker to worker, same cluster",
			server: NodeConfig(dirA, "worker-0"),
			client: func(t *testing.T) credentials.TransportCredentials {
				return mustClient(t, NodeConfig(dirA, "coordinator"))
			},
		},
		{
			name:      "client without certificate",
			server:    NodeConfig(dirA, "coordinator"),
			client:    func(t *testing.T) credentials.TransportCredentials { return rawClient(t, "", "", caA) },
			serverErr: "didn't provide a certificate",
		},
		{
			name:      "plaintext client",
			server:    NodeConfig(dirA, "coordinator"),
			client:    func(t *testing.T) credentials.TransportCredentials { return insecure.NewCredentials() },
			serverErr: "first record does not look like a TLS handshake",
		},
		{
			name:      "client certificate from another CA",
			server:    NodeConfig(dirA, "coordinator"),
			client:    func(t *testing.T) credentials.TransportCredentials { return rawClient(t, certB0, keyB0, caA) },
			serverErr: "certificate signed by unknown authority",
		},
		{
			name:      "expired client certificate",
			server:    NodeConfig(dirA, "coordinator"),
			client:    func(t *testing.T) credentials.TransportCredentials { return rawClient(t, certExp, keyExp, caA) },
			serverErr: "certificate has expired",
		},
		{
			name:   "server certificate from another CA",
			server: NodeConfig(dirB, "coordinator"),
			client: func(t *testing.T) credentials.TransportCredentials {
				return mustClient(t, NodeConfig(dirA, "worker-0"))
			},
			clientErr: "certificate signed by unknown authority",
		},
		{
			// Control for the case above: the same raw client is accepted by
			// its own cluster, so the refusals come from the certificates.
			name:   "raw client of the right cluster accepted",
			server: NodeConfig(dirA, "coordinator"),
			client: func(t *testing.T) credentials.TransportCredentials { return rawClient(t, certA0, keyA0, caA) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, refused := startServer(t, mustServer(t, tc.server))
			err := check(t, addr, tc.client(t))
			if tc.serverErr == "" && tc.clientErr == "" {
				if err != nil {
					t.Fatalf("call refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("call succeeded, want it refused")
			}
			if tc.clientErr != "" && !strings.Contains(err.Error(), tc.clientErr) {
				t.Errorf("client error %q, want it to contain %q", err, tc.clientErr)
			}
			if tc.serverErr != "" {
				select {
				case serr := <-refused:
					if !strings.Contains(serr.Error(), tc.serverErr) {
						t.Errorf("server refused with %q, want %q", serr, tc.serverErr)
					}
				case <-time.After(5 * time.Second):
					t.Errorf("server recorded no refused handshake (client saw %v)", err)
				}
			}
		})
	}
}

func TestDialedByAnyAddress(t *testing.T) {
	// Members are dialled by whatever address they advertise; the shared
	// server name makes the address irrelevant to verification. 127.0.0.2
	// is in no certificate's SANs: verifying against the dialled address
	// would refuse it.
	dir := cluster(t, "coordinator", "worker-0")
	addr, _ := startServerOn(t, "127.0.0.2:0", mustServer(t, NodeConfig(dir, "coordinator")))
	if err := check(t, addr, mustClient(t, NodeConfig(dir, "worker-0"))); err != nil {
		t.Errorf("dial %s: %v", addr, err)
	}
	addr, _ = startServer(t, mustServer(t, NodeConfig(dir, "coordinator")))
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(t, net.JoinHostPort("localhost", port), mustClient(t, NodeConfig(dir, "worker-0"))); err != nil {
		t.Errorf("dial localhost:%s: %v", port, err)
	}
}

func TestOptions(t *testing.T) {
	dir := cluster(t, "coordinator", "worker-0")
	tests := []struct {
		name    string
		server  Config
		client  Config
		wantErr bool // the call is refused
	}{
		{name: "both plaintext", server: Config{}, client: Config{}},
		{name: "both mTLS", server: NodeConfig(dir, "coordinator"), client: NodeConfig(dir, "worker-0")},
		{name: "plaintext client, mTLS server", server: NodeConfig(dir, "coordinator"), client: Config{}, wantErr: true},
		{name: "mTLS client, plaintext server", server: Config{}, client: NodeConfig(dir, "worker-0"), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sopts, err := tc.server.ServerOptions()
			if err != nil {
				t.Fatal(err)
			}
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := grpc.NewServer(sopts...)
			hs := health.NewServer()
			healthpb.RegisterHealthServer(srv, hs)
			go srv.Serve(lis)
			defer srv.Stop()
			dopt, err := tc.client.DialOption()
			if err != nil {
				t.Fatal(err)
			}
			conn, err := grpc.NewClient(lis.Addr().String(), dopt)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			if (err != nil) != tc.wantErr {
				t.Fatalf("call error %v, want refused=%v", err, tc.wantErr)
			}
		})
	}
	partial := Config{CertFile: "x.pem"}
	if _, err := partial.ServerOptions(); err == nil {
		t.Error("ServerOptions accepted a partial configuration")
	}
	if _, err := partial.DialOption(); err == nil {
		t.Error("DialOption accepted a partial configuration")
	}
}

func TestValidate(t *testing.T) {
	dirA := cluster(t, "worker-0", "worker-1")
	dirB := cluster(t, "worker-0")
	if err := Generate(dirA, []string{"expired"}, time.Hour, time.Now().Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := Generate(dirA, []string{"future"}, time.Hour, time.Now().Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	caA, caB := filepath.Join(dirA, CAFileName), filepath.Join(dirB, CAFileName)
	cert0, key0 := NodeFiles(dirA, "worker-0")
	_, key1 := NodeFiles(dirA, "worker-1")
	missing := filepath.Join(dirA, "nope.pem")
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; nil: valid
	}{
		{name: "off", cfg: Config{}},
		{name: "valid", cfg: NodeConfig(dirA, "worker-0")},
		{name: "only certificate", cfg: Config{CertFile: cert0}, want: []string{"incomplete", "no key file", "no CA file", EnvKey, EnvCA}},
		{name: "no CA", cfg: Config{CertFile: cert0, KeyFile: key0}, want: []string{"incomplete", "no CA file"}},
		{name: "missing certificate file", cfg: Config{CertFile: missing, KeyFile: key0, CAFile: caA}, want: []string{"read certificate", missing}},
		{name: "missing key file", cfg: Config{CertFile: cert0, KeyFile: missing, CAFile: caA}, want: []string{"read key", missing}},
		{name: "missing CA file", cfg: Config{CertFile: cert0, KeyFile: key0, CAFile: missing}, want: []string{"read CA", missing}},
		{name: "CA file without certificate", cfg: Config{CertFile: cert0, KeyFile: key0, CAFile: key0}, want: []string{key0, "no PEM certificate"}},
		{name: "key of another node", cfg: Config{CertFile: cert0, KeyFile: key1, CAFile: caA}, want: []string{cert0, key1, "does not match"}},
		{name: "another cluster's CA", cfg: Config{CertFile: cert0, KeyFile: key0, CAFile: caB}, want: []string{cert0, "not signed by a CA of", caB}},
		{name: "expired", cfg: NodeConfig(dirA, "expired"), want: []string{"expired at"}},
		{name: "not yet valid", cfg: NodeConfig(dirA, "future"), want: []string{"not valid before"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if _, cerr := tc.cfg.ServerCredentials(); cerr == nil {
				t.Error("ServerCredentials accepted it")
			}
			if _, cerr := tc.cfg.ClientCredentials(); cerr == nil {
				t.Error("ClientCredentials accepted it")
			}
		})
	}
}

func TestEnabled(t *testing.T) {
	tests := []struct {
		cfg  Config
		want bool
	}{
		{Config{}, false},
		{Config{CertFile: "c", KeyFile: "k"}, false},
		{Config{CertFile: "c", CAFile: "a"}, false},
		{Config{KeyFile: "k", CAFile: "a"}, false},
		{Config{CertFile: "c", KeyFile: "k", CAFile: "a"}, true},
	}
	for _, tc := range tests {
		if got := tc.cfg.Enabled(); got != tc.want {
			t.Errorf("%+v.Enabled() = %v, want %v", tc.cfg, got, tc.want)
		}
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{EnvCert: "env-cert", EnvKey: "env-key", EnvCA: "env-ca"}
	tests := []struct {
		name string
		in   Config
		env  map[string]string
		want Config
	}{
		{name: "env only", in: Config{}, env: env, want: Config{"env-cert", "env-key", "env-ca"}},
		{name: "flags win", in: Config{"flag-cert", "flag-key", "flag-ca"}, env: env, want: Config{"flag-cert", "flag-key", "flag-ca"}},
		{name: "mixed", in: Config{CertFile: "flag-cert", CAFile: "flag-ca"}, env: env, want: Config{"flag-cert", "env-key", "flag-ca"}},
		{name: "no env", in: Config{KeyFile: "flag-key"}, env: nil, want: Config{KeyFile: "flag-key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.FromEnv(func(k string) string { return tc.env[k] })
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
