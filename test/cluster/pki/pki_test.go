package pki

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"testing"
)

func TestEnsureIssuesOnceAndReissuesOnChange(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := Subject{Name: "apiserver", CommonName: "kube-apiserver", Server: true,
		DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(198, 18, 0, 1).To4()}}
	p, err := ca.Ensure(s)
	if err != nil {
		t.Fatal(err)
	}
	first := read(t, p.Cert)
	if _, err := ca.Ensure(s); err != nil {
		t.Fatal(err)
	}
	if second := read(t, p.Cert); !second.Equal(first) {
		t.Fatal("an unchanged subject was issued again")
	}
	s.IPs = append(s.IPs, net.IPv4(127, 0, 0, 1).To4())
	if _, err := ca.Ensure(s); err != nil {
		t.Fatal(err)
	}
	third := read(t, p.Cert)
	if third.Equal(first) || len(third.IPAddresses) != 2 {
		t.Fatalf("a changed SAN list was not re-issued: %v", third.IPAddresses)
	}

	// A reloaded CA verifies what the first one issued.
	again, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(again.cert)
	if _, err := third.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
		t.Fatal(err)
	}
}

func TestClientCertificateCarriesGroups(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.Ensure(Subject{Name: "kubelet", CommonName: "system:node:remocal", Organization: []string{"system:nodes"}})
	if err != nil {
		t.Fatal(err)
	}
	c := read(t, p.Cert)
	if c.Subject.CommonName != "system:node:remocal" || c.Subject.Organization[0] != "system:nodes" {
		t.Fatalf("subject = %v", c.Subject)
	}
	if c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Fatalf("usage = %v", c.ExtKeyUsage)
	}
}

func TestServiceAccountKeyKept(t *testing.T) {
	dir := t.TempDir()
	priv, pub, err := EnsureServiceAccountKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(priv)
	if _, _, err := EnsureServiceAccountKey(dir); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(priv)
	if string(before) != string(after) {
		t.Fatal("service-account key replaced: every issued token would break")
	}
	if _, err := os.Stat(pub); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
