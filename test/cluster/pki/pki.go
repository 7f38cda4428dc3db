// Package pki creates the certificates and keys of the local test cluster with crypto/x509: one
// CA, the API server's serving certificate, client certificates for the admin, the kubelet and the
// API server's calls to the kubelet, and the service-account signing key pair.
//
// Files are created once and kept: a cluster restarted on the same state directory keeps trusting
// the kubeconfigs and service-account tokens it handed out before.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// validity is long because a test cluster's state outlives many sessions and nothing rotates it.
const validity = 10 * 365 * 24 * time.Hour

// Subject names one certificate to issue from the CA.
type Subject struct {
	Name         string // file stem: Name.crt and Name.key
	CommonName   string
	Organization []string
	DNSNames     []string
	IPs          []net.IP
	Server       bool // serving certificate (ExtKeyUsageServerAuth) rather than a client one
}

// Paths of one issued certificate.
type Paths struct {
	Cert string
	Key  string
}

// Authority issues certificates from a CA kept in a directory.
type Authority struct {
	dir  string
	cert *x509.Certificate
	key  crypto.Signer
}

// CACertPath is the path of the CA certificate, for kubeconfigs and --client-ca-file.
func (a *Authority) CACertPath() string { return filepath.Join(a.dir, "ca.crt") }

// LoadOrCreateCA reads the CA in dir, creating it first if it does not exist.
func LoadOrCreateCA(dir string) (*Authority, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	a := &Authority{dir: dir}
	certPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if exists(certPath) && exists(keyPath) {
		cert, key, err := readPair(certPath, keyPath)
		if err != nil {
			return nil, fmt.Errorf("read CA: %w", err)
		}
		a.cert, a.key = cert, key
		return a, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "remocal-test-cluster-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	if err := writePair(certPath, keyPath, der, key); err != nil {
		return nil, err
	}
	a.cert, err = x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	a.key = key
	return a, nil
}

// Ensure issues the certificate for s unless a valid one for the same names already exists.
func (a *Authority) Ensure(s Subject) (Paths, error) {
	p := Paths{Cert: filepath.Join(a.dir, s.Name+".crt"), Key: filepath.Join(a.dir, s.Name+".key")}
	if cert, _, err := readPair(p.Cert, p.Key); err == nil && a.matches(cert, s) {
		return p, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Paths{}, err
	}
	usage := x509.ExtKeyUsageClientAuth
	if s.Server {
		usage = x509.ExtKeyUsageServerAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: s.CommonName, Organization: s.Organization},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     s.DNSNames,
		IPAddresses:  s.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return Paths{}, fmt.Errorf("issue certificate %s: %w", s.Name, err)
	}
	return p, writePair(p.Cert, p.Key, der, key)
}

// matches reports whether cert was issued by this CA for exactly the names in s, so that a
// changed node address or SAN list re-issues instead of silently keeping a stale certificate.
func (a *Authority) matches(cert *x509.Certificate, s Subject) bool {
	if cert.CheckSignatureFrom(a.cert) != nil || time.Now().After(cert.NotAfter) {
		return false
	}
	if cert.Subject.CommonName != s.CommonName || fmt.Sprint(cert.Subject.Organization) != fmt.Sprint(s.Organization) {
		return false
	}
	if fmt.Sprint(cert.DNSNames) != fmt.Sprint(s.DNSNames) || len(cert.IPAddresses) != len(s.IPs) {
		return false
	}
	for i, ip := range s.IPs {
		if !cert.IPAddresses[i].Equal(ip) {
			return false
		}
	}
	return true
}

// EnsureServiceAccountKey creates the RSA key pair that signs service-account tokens
// (sa.key, sa.pub) unless it exists. RSA because every token consumer accepts RS256.
func EnsureServiceAccountKey(dir string) (private, public string, err error) {
	private, public = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if exists(private) && exists(public) {
		return private, public, nil
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", err
	}
	if err := writePEM(private, "PRIVATE KEY", der, 0o600); err != nil {
		return "", "", err
	}
	return private, public, writePEM(public, "PUBLIC KEY", pub, 0o644)
}

func readPair(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("key cannot sign")
	}
	return cert, signer, nil
}

func writePair(certPath, keyPath string, der []byte, key crypto.Signer) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(keyPath, "PRIVATE KEY", keyDER, 0o600); err != nil {
		return err
	}
	return writePEM(certPath, "CERTIFICATE", der, 0o644)
}

func writePEM(path, blockType string, der []byte, mode os.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
