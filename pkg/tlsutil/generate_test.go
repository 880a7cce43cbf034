package tlsutil

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("%s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGenerateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs") // created by Generate
	now := time.Now()
	if err := Generate(dir, []string{"coordinator", "worker-0"}, 24*time.Hour, now); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"ca-key.pem", "ca.pem", "coordinator-key.pem", "coordinator.pem", "worker-0-key.pem", "worker-0.pem"}
	if !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		wantMode := os.FileMode(0o644)
		if strings.HasSuffix(n, "-key.pem") {
			wantMode = 0o600
		}
		if fi.Mode().Perm() != wantMode {
			t.Errorf("%s: mode %v, want %v", n, fi.Mode().Perm(), wantMode)
		}
	}
	ca := readCert(t, filepath.Join(dir, CAFileName))
	if !ca.IsCA {
		t.Error("ca.pem is not a CA")
	}
	certPath, _ := NodeFiles(dir, "worker-0")
	leaf := readCert(t, certPath)
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", leaf.PublicKey)
	}
	for _, d := range []string{ServerName, "worker-0", "localhost"} {
		if !slices.Contains(leaf.DNSNames, d) {
			t.Errorf("DNS SANs %v lack %q", leaf.DNSNames, d)
		}
	}
	for _, ip := range []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback} {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			t.Errorf("IP SANs %v lack %v", leaf.IPAddresses, ip)
		}
	}
	if !leaf.NotAfter.Equal(now.Add(24 * time.Hour).Truncate(time.Second)) {
		t.Errorf("NotAfter %v, want %v", leaf.NotAfter, now.Add(24*time.Hour))
	}
	if leaf.IsCA {
		t.Error("node certificate is a CA")
	}
	for _, n := range []string{"coordinator", "worker-0"} {
		if err := NodeConfig(dir, n).Validate(); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

func TestGenerateReusesCA(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	if err := Generate(dir, []string{"worker-0"}, time.Hour, now); err != nil {
		t.Fatal(err)
	}
	caBefore, err := os.ReadFile(filepath.Join(dir, CAFileName))
	if err != nil {
		t.Fatal(err)
	}
	// A longer validity than the CA's is clamped to the CA's end.
	if err := Generate(dir, []string{"worker-1"}, 1000*time.Hour, now); err != nil {
		t.Fatal(err)
	}
	caAfter, err := os.ReadFile(filepath.Join(dir, CAFileName))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(caBefore, caAfter) {
		t.Fatal("second Generate replaced the CA")
	}
	if err := NodeConfig(dir, "worker-1").Validate(); err != nil {
		t.Fatalf("node added to the existing CA: %v", err)
	}
	ca := readCert(t, filepath.Join(dir, CAFileName))
	cert1, _ := NodeFiles(dir, "worker-1")
	if got := readCert(t, cert1).NotAfter; !got.Equal(ca.NotAfter) {
		t.Errorf("worker-1 NotAfter %v, want the CA's %v", got, ca.NotAfter)
	}

	// Half a CA is refused rather than silently replaced.
	if err := os.Remove(filepath.Join(dir, CAKeyFileName)); err != nil {
		t.Fatal(err)
	}
	err = Generate(dir, []string{"worker-2"}, time.Hour, now)
	if err == nil || !strings.Contains(err.Error(), CAKeyFileName) {
		t.Fatalf("Generate with ca.pem but no ca-key.pem: %v", err)
	}
}

func TestGenerateRefuses(t *testing.T) {
	tests := []struct {
		name     string
		names    []string
		validFor time.Duration
		want     string
	}{
		{"no names", nil, time.Hour, "no node names"},
		{"empty name", []string{""}, time.Hour, "not a lower-case DNS label"},
		{"upper case", []string{"Worker"}, time.Hour, "not a lower-case DNS label"},
		{"path", []string{"../x"}, time.Hour, "not a lower-case DNS label"},
		{"leading dash", []string{"-x"}, time.Hour, "not a lower-case DNS label"},
		{"ca", []string{"ca"}, time.Hour, "clash"},
		{"duplicate", []string{"a", "a"}, time.Hour, "given twice"},
		{"zero validity", []string{"a"}, 0, "not positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			err := Generate(dir, tc.names, tc.validFor, time.Now())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("refused Generate left files: %v", entries)
			}
		})
	}
}

func TestGenCertsMain(t *testing.T) {
	tests := []struct {
		name     string
		args     func(dir string) []string
		code     int
		files    []string
		inStderr string
	}{
		{
			name: "names",
			args: func(dir string) []string {
				return []string{"--dir", dir, "--names", "coordinator, worker-0,worker-1", "--valid-for", "2h"}
			},
			files:    []string{"ca.pem", "ca-key.pem", "coordinator.pem", "coordinator-key.pem", "worker-0.pem", "worker-1-key.pem"},
			inStderr: "worker-1-key.pem",
		},
		{name: "unknown flag", args: func(dir string) []string { return []string{"--dir", dir, "--nope"} }, code: 2, inStderr: "nope"},
		{name: "extra argument", args: func(dir string) []string { return []string{"--dir", dir, "x"} }, code: 2, inStderr: `"x"`},
		{name: "bad name", args: func(dir string) []string { return []string{"--dir", dir, "--names", "Bad"} }, code: 1, inStderr: `"Bad"`},
		{name: "help", args: func(string) []string { return []string{"-h"} }, code: 0, inStderr: "keep ca-key.pem off the nodes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var stderr bytes.Buffer
			if code := GenCertsMain(tc.args(dir), &stderr); code != tc.code {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.inStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.inStderr)
			}
			for _, f := range tc.files {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// issue writes a certificate and key named name into dir, signed by dir's
// CA, from a node template that edit may change, for certificates Generate
// would never make. The CA's template is edited by editCA first, when given,
// and the CA re-signed in place with its own key.
func issue(t *testing.T, dir, name string, edit func(*x509.Certificate), editCA func(*x509.Certificate)) Config {
	t.Helper()
	ca, caKey, err := loadCA(filepath.Join(dir, CAFileName), filepath.Join(dir, CAKeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if editCA != nil {
		tmpl := *ca
		editCA(&tmpl)
		der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, caKey.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		if err := writePEM(filepath.Join(dir, CAFileName), "CERTIFICATE", der, 0o644); err != nil {
			t.Fatal(err)
		}
		if ca, err = x509.ParseCertificate(der); err != nil {
			t.Fatal(err)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{ServerName},
	}
	edit(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := NodeFiles(dir, name)
	if err := writeKey(keyPath, key); err != nil {
		t.Fatal(err)
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		t.Fatal(err)
	}
	return NodeConfig(dir, name)
}

func TestValidateCertificateContents(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*x509.Certificate)
		editCA func(*x509.Certificate)
		want   string // substring of Validate's error; "" when valid
	}{
		{name: "control: hand-made certificate", edit: func(*x509.Certificate) {}},
		{name: "no ringtrain SAN", edit: func(c *x509.Certificate) { c.DNSNames = []string{"worker-9"} }, want: `lacks the DNS SAN "ringtrain"`},
		{name: "server auth only", edit: func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }, want: "as a client certificate"},
		{name: "client auth only", edit: func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} }, want: "as a server certificate"},
		{
			name: "expired CA",
			edit: func(*x509.Certificate) {},
			editCA: func(c *x509.Certificate) {
				c.NotBefore, c.NotAfter = time.Now().Add(-3*time.Hour), time.Now().Add(-2*time.Hour)
			},
			want: "the CA that signed certificate",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := cluster(t, "worker-0")
			cfg := issue(t, dir, "odd", tc.edit, tc.editCA)
			err := cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate error %v, want %q", err, tc.want)
			}
		})
	}
}
