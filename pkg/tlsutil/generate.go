package tlsutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// File names written by Generate in its directory. Node files are
// "<name>.pem" and "<name>-key.pem".
const (
	CAFileName    = "ca.pem"
	CAKeyFileName = "ca-key.pem"
)

// clockSkew is how far before "now" certificates become valid, so that a
// node whose clock lags the generating machine's still accepts them.
const clockSkew = 5 * time.Minute

// validNodeName reports whether name is a lower-case DNS label (1 to 63 of
// a-z, 0-9 and '-', not starting or ending with '-'): it becomes a file name
// and a DNS SAN.
func validNodeName(name string) bool {
	if len(name) == 0 || len(name) > 63 || name[0] == '-' || name[len(name)-1] == '-' {
		return false
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// NodeFiles returns the paths of the certificate and key Generate writes in
// dir for the node called name.
func NodeFiles(dir, name string) (cert, key string) {
	return filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
}

// NodeConfig returns the Config of the node called name whose files
// Generate wrote in dir.
func NodeConfig(dir, name string) Config {
	cert, key := NodeFiles(dir, name)
	return Config{CertFile: cert, KeyFile: key, CAFile: filepath.Join(dir, CAFileName)}
}

// Generate writes a CA and one certificate per name into dir (created 0700
// if missing), for a test cluster:
//
//   - ca.pem and ca-key.pem: a self-signed ECDSA P-256 CA. If both files
//     already exist the CA is reused, so running Generate again with new
//     names adds members to an existing cluster (and re-issues the
//     certificates of names given again).
//   - <name>.pem and <name>-key.pem for every name: an ECDSA P-256 key and a
//     certificate signed by the CA, usable for server and client
//     authentication, with the DNS SANs "ringtrain", name and "localhost"
//     and the IP SANs 127.0.0.1 and ::1.
//
// Certificates are valid from now minus five minutes (clock skew) until
// now+validFor, and never beyond the CA's own end. Names are lower-case DNS
// labels ("coordinator", "worker-0"). Key files are written with mode 0600,
// certificates 0644, each atomically (temporary file, then rename).
func Generate(dir string, names []string, validFor time.Duration, now time.Time) error {
	if validFor <= 0 {
		return fmt.Errorf("tls: generate: validity %v is not positive", validFor)
	}
	if len(names) == 0 {
		return errors.New("tls: generate: no node names")
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if !validNodeName(n) {
			return fmt.Errorf("tls: generate: node name %q is not a lower-case DNS label (letters, digits, '-')", n)
		}
		if n == "ca" {
			return fmt.Errorf("tls: generate: node name %q would clash with the CA's files", n)
		}
		if seen[n] {
			return fmt.Errorf("tls: generate: node name %q given twice", n)
		}
		seen[n] = true
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tls: generate: %w", err)
	}
	ca, caKey, err := loadOrCreateCA(dir, validFor, now)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := writeNode(dir, n, ca, caKey, validFor, now); err != nil {
			return err
		}
	}
	return nil
}

// loadOrCreateCA reuses dir's CA when both its files exist and creates one
// otherwise.
func loadOrCreateCA(dir string, validFor time.Duration, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	certPath, keyPath := filepath.Join(dir, CAFileName), filepath.Join(dir, CAKeyFileName)
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		return loadCA(certPath, keyPath)
	case certErr == nil:
		return nil, nil, fmt.Errorf("tls: generate: %s exists but %s does not: %w", certPath, keyPath, keyErr)
	case keyErr == nil:
		return nil, nil, fmt.Errorf("tls: generate: %s exists but %s does not: %w", keyPath, certPath, certErr)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: generate CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: ServerName + " cluster CA", Organization: []string{ServerName}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validFor),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: generate CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: generate CA certificate: %w", err)
	}
	if err := writeKey(keyPath, key); err != nil {
		return nil, nil, err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// loadCA reads an existing CA certificate and its key and checks that they
// belong together.
func loadCA(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: generate: read CA: %w", err)
	}
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("tls: generate: %s holds no PEM certificate", certPath)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: generate: %s: %w", certPath, err)
	}
	if !cert.IsCA {
		return nil, nil, fmt.Errorf("tls: generate: %s is not a CA certificate", certPath)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: generate: read CA key: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, fmt.Errorf("tls: generate: %s holds no PEM key", keyPath)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: generate: %s: %w", keyPath, err)
	}
	key, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("tls: generate: %s: key of type %T cannot sign", keyPath, parsed)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("tls: generate: %s is not the key of %s", keyPath, certPath)
	}
	return cert, key, nil
}

// writeNode issues the certificate of one node and writes its two files.
func writeNode(dir, name string, ca *x509.Certificate, caKey crypto.Signer, validFor time.Duration, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("tls: generate key of %s: %w", name, err)
	}
	serial, err := serialNumber()
	if err != nil {
		return err
	}
	notAfter := now.Add(validFor)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	var dns []string
	for _, d := range []string{ServerName, name, "localhost"} {
		if !slices.Contains(dns, d) {
			dns = append(dns, d)
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{ServerName}},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     dns,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return fmt.Errorf("tls: generate certificate of %s: %w", name, err)
	}
	certPath, keyPath := NodeFiles(dir, name)
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	return writePEM(certPath, "CERTIFICATE", der, 0o644)
}

// serialNumber returns a random 128-bit certificate serial number.
func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("tls: generate serial number: %w", err)
	}
	return n, nil
}

// writeKey writes key as a PKCS #8 "PRIVATE KEY" PEM file, mode 0600.
func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("tls: generate: encode key %s: %w", path, err)
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

// writePEM writes one PEM block to path atomically with the given mode.
func writePEM(path, blockType string, der []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("tls: generate: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("tls: generate: write %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	if err := pem.Encode(f, &pem.Block{Type: blockType, Bytes: der}); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("tls: generate: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("tls: generate: write %s: %w", path, err)
	}
	return nil
}

// GenCertsMain runs the gen-certs command line ("coordinator gen-certs
// --dir DIR --names a,b,c"): it calls Generate with time.Now and reports the
// files on stderr. It returns the process exit code: 0 on success, 1 if
// generation failed, 2 for a usage error.
func GenCertsMain(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("gen-certs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "certs", "directory to write the CA and node certificates to (an existing CA there is reused)")
	names := fs.String("names", "coordinator,worker-0,worker-1", "comma-separated node names; each gets NAME.pem and NAME-key.pem")
	validFor := fs.Duration("valid-for", 365*24*time.Hour, "validity of the CA and the certificates")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: gen-certs [--dir DIR] [--names a,b,c] [--valid-for DURATION]\n\n"+
			"Writes a test-cluster CA (%s, %s) and a certificate and key per node.\n"+
			"Ship each node %s, its NAME.pem and NAME-key.pem; keep %s off the nodes.\n\n",
			CAFileName, CAKeyFileName, CAFileName, CAKeyFileName)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gen-certs: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var list []string
	for _, n := range strings.Split(*names, ",") {
		if n = strings.TrimSpace(n); n != "" {
			list = append(list, n)
		}
	}
	if err := Generate(*dir, list, *validFor, time.Now()); err != nil {
		fmt.Fprintf(stderr, "gen-certs: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "gen-certs: CA %s (key %s: keep it off the nodes)\n", filepath.Join(*dir, CAFileName), filepath.Join(*dir, CAKeyFileName))
	for _, n := range list {
		cert, key := NodeFiles(*dir, n)
		fmt.Fprintf(stderr, "gen-certs: wrote %s and %s\n", cert, key)
	}
	return 0
}
