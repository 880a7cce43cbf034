package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// ServerName is the DNS name every node certificate carries as a SAN and
// every client verifies servers against, whatever address it dialled. See
// the package documentation for why.
const ServerName = "ringtrain"

// Environment variables read by [Config.FromEnv].
const (
	EnvCert = "RINGTRAIN_TLS_CERT"
	EnvKey  = "RINGTRAIN_TLS_KEY"
	EnvCA   = "RINGTRAIN_TLS_CA"
)

// Config names the PEM files: the node's certificate and key, and the CA
// bundle that signs every member. The zero Config means TLS is off.
type Config struct {
	// CertFile is the node's certificate (PEM), optionally followed by
	// intermediate CA certificates.
	CertFile string
	// KeyFile is the node's private key (PEM).
	KeyFile string
	// CAFile holds the certificates (PEM) of the CAs that sign members.
	CAFile string
}

// Bind registers --tls-cert, --tls-key and --tls-ca on fs, bound to c.
func (c *Config) Bind(fs *flag.FlagSet) {
	fs.StringVar(&c.CertFile, "tls-cert", c.CertFile, "this node's TLS certificate, PEM (env "+EnvCert+"); with --tls-key and --tls-ca enables mTLS on every gRPC connection")
	fs.StringVar(&c.KeyFile, "tls-key", c.KeyFile, "this node's TLS private key, PEM (env "+EnvKey+")")
	fs.StringVar(&c.CAFile, "tls-ca", c.CAFile, "CA certificate(s) that sign every cluster member, PEM (env "+EnvCA+")")
}

// FromEnv returns c with its empty fields filled from RINGTRAIN_TLS_CERT,
// RINGTRAIN_TLS_KEY and RINGTRAIN_TLS_CA as getenv (os.Getenv in a main)
// reports them. Fields already set (by flags) win over the environment.
func (c Config) FromEnv(getenv func(string) string) Config {
	fill := func(field *string, name string) {
		if *field == "" {
			*field = getenv(name)
		}
	}
	fill(&c.CertFile, EnvCert)
	fill(&c.KeyFile, EnvKey)
	fill(&c.CAFile, EnvCA)
	return c
}

// Enabled reports whether all three files are named, that is whether
// connections use mTLS. A partial configuration is not enabled; Validate
// reports it as an error.
func (c Config) Enabled() bool {
	return c.CertFile != "" && c.KeyFile != "" && c.CAFile != ""
}

// Validate checks the configuration at start-up so that a mistake is named
// before any connection fails: with no file named it returns nil (TLS off);
// otherwise every file must be named and readable, the certificate must
// match the key, be valid now, be signed by a CA of CAFile, allow both
// server and client authentication, and carry the SAN [ServerName].
func (c Config) Validate() error {
	if c == (Config{}) {
		return nil
	}
	_, err := c.load(time.Now())
	return err
}

// ServerCredentials returns the credentials of a gRPC server: TLS 1.3 at
// least, presenting the node's certificate, and requiring every client to
// present a certificate signed by a CA of CAFile.
func (c Config) ServerCredentials() (credentials.TransportCredentials, error) {
	m, err := c.load(time.Now())
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(&tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{m.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    m.pool,
	}), nil
}

// ClientCredentials returns the credentials of a gRPC client: TLS 1.3 at
// least, presenting the node's certificate, and accepting only a server
// whose certificate is signed by a CA of CAFile and names [ServerName]
// (whatever address was dialled).
func (c Config) ClientCredentials() (credentials.TransportCredentials, error) {
	m, err := c.load(time.Now())
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(&tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{m.cert},
		RootCAs:      m.pool,
		ServerName:   ServerName,
	}), nil
}

// ServerOptions returns the grpc.ServerOption that sets the server's
// credentials, or none when TLS is off (plaintext).
func (c Config) ServerOptions() ([]grpc.ServerOption, error) {
	if !c.Enabled() {
		if err := c.Validate(); err != nil {
			return nil, err
		}
		return nil, nil
	}
	creds, err := c.ServerCredentials()
	if err != nil {
		return nil, err
	}
	return []grpc.ServerOption{grpc.Creds(creds)}, nil
}

// DialOption returns the grpc.DialOption that sets a client's credentials:
// mTLS when enabled, plaintext (insecure credentials) when TLS is off.
func (c Config) DialOption() (grpc.DialOption, error) {
	if !c.Enabled() {
		if err := c.Validate(); err != nil {
			return nil, err
		}
		return grpc.WithTransportCredentials(insecure.NewCredentials()), nil
	}
	creds, err := c.ClientCredentials()
	if err != nil {
		return nil, err
	}
	return grpc.WithTransportCredentials(creds), nil
}

// material is a checked configuration, ready for tls.Config.
type material struct {
	cert tls.Certificate
	pool *x509.CertPool
}

// load reads and checks the files as Validate documents, at time now.
// Unlike Validate, it refuses the zero Config: credentials need files.
func (c Config) load(now time.Time) (*material, error) {
	if c.CertFile == "" && c.KeyFile == "" && c.CAFile == "" {
		return nil, errors.New("tls: not configured (no certificate, key or CA file)")
	}
	var missing []string
	for _, f := range []struct{ v, what string }{
		{c.CertFile, "certificate file (--tls-cert, " + EnvCert + ")"},
		{c.KeyFile, "key file (--tls-key, " + EnvKey + ")"},
		{c.CAFile, "CA file (--tls-ca, " + EnvCA + ")"},
	} {
		if f.v == "" {
			missing = append(missing, f.what)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("tls: incomplete configuration: no %s", strings.Join(missing, ", no "))
	}
	certPEM, err := os.ReadFile(c.CertFile)
	if err != nil {
		return nil, fmt.Errorf("tls: read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: read key: %w", err)
	}
	caPEM, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("tls: read CA: %w", err)
	}
	pool, err := parsePool(caPEM)
	if err != nil {
		return nil, fmt.Errorf("tls: CA file %s: %w", c.CAFile, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls: certificate %s with key %s: %w", c.CertFile, c.KeyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls: certificate %s: %w", c.CertFile, err)
		}
	}
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("tls: certificate %s is not valid before %s", c.CertFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("tls: certificate %s expired at %s", c.CertFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	inter := x509.NewCertPool()
	for i, der := range cert.Certificate[1:] {
		ic, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("tls: certificate %s, chain certificate %d: %w", c.CertFile, i+2, err)
		}
		inter.AddCert(ic)
	}
	for _, u := range []struct {
		usage x509.ExtKeyUsage
		what  string
	}{{x509.ExtKeyUsageServerAuth, "server"}, {x509.ExtKeyUsageClientAuth, "client"}} {
		_, err := leaf.Verify(x509.VerifyOptions{
			Roots: pool, Intermediates: inter, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{u.usage},
		})
		var ui x509.UnknownAuthorityError
		var ci x509.CertificateInvalidError
		switch {
		case errors.As(err, &ui):
			return nil, fmt.Errorf("tls: certificate %s is not signed by a CA of %s: %w", c.CertFile, c.CAFile, err)
		case errors.As(err, &ci) && ci.Reason == x509.Expired:
			// The leaf's dates were checked above: a CA of the chain is at fault.
			return nil, fmt.Errorf("tls: the CA that signed certificate %s (from %s) is expired or not yet valid: %w", c.CertFile, c.CAFile, err)
		case err != nil:
			return nil, fmt.Errorf("tls: certificate %s as a %s certificate (every member is both): %w", c.CertFile, u.what, err)
		}
	}
	if err := leaf.VerifyHostname(ServerName); err != nil {
		return nil, fmt.Errorf("tls: certificate %s lacks the DNS SAN %q that clients verify: %w", c.CertFile, ServerName, err)
	}
	cert.Leaf = leaf
	return &material{cert: cert, pool: pool}, nil
}

// parsePool reads every CERTIFICATE block of a PEM bundle into a pool.
func parsePool(data []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for i := 1; ; i++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", i, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return pool, nil
}
