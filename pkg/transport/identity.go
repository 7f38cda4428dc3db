package transport

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// certValidity is long because nobody checks it: peers are authenticated by their pinned key, never
// by a chain or a date. A certificate found expired is re-issued for the same key all the same, so
// that tools which do look at dates (openssl, debugging proxies) are not misled.
const certValidity = 10 * 365 * 24 * time.Hour

// fingerprintPrefix names the hash, so that a future change of hash is visible in the pins.
const fingerprintPrefix = "sha256:"

// Identity is a key pair with a self-signed certificate (ed25519). Its [Identity.Fingerprint] is
// what the other side pins.
type Identity struct {
	cert tls.Certificate
}

// NewIdentity creates a fresh key and a self-signed certificate for it.
func NewIdentity() (Identity, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Identity{}, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return issue(key, time.Now())
}

// issue makes a self-signed certificate for key, valid from a little before now so that a peer's
// slightly slow clock does not matter to tools that check dates.
func issue(key ed25519.PrivateKey, now time.Time) (Identity, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return Identity{}, fmt.Errorf("generate certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "remocal"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return Identity{}, fmt.Errorf("create self-signed certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return Identity{}, fmt.Errorf("parse self-signed certificate: %w", err)
	}
	return Identity{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}, nil
}

// Certificate is the identity in the form crypto/tls takes.
func (id Identity) Certificate() tls.Certificate { return id.cert }

// Fingerprint is "sha256:" and the lowercase hex SHA-256 of the certificate's SubjectPublicKeyInfo.
// It names the key, not the certificate, so it stays the same when the certificate is re-issued.
func (id Identity) Fingerprint() string {
	if id.cert.Leaf == nil {
		return ""
	}
	return fingerprint(id.cert.Leaf)
}

func fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return fingerprintPrefix + hex.EncodeToString(sum[:])
}

// ValidateFingerprint reports whether s has the form of a [Identity.Fingerprint], so that a pin
// passed on a command line fails loudly at start instead of refusing every peer later.
func ValidateFingerprint(s string) error {
	rest, ok := strings.CutPrefix(s, fingerprintPrefix)
	if !ok {
		return fmt.Errorf("fingerprint %q: want prefix %q", s, fingerprintPrefix)
	}
	if len(rest) != 2*sha256.Size {
		return fmt.Errorf("fingerprint %q: want %d hex digits, got %d", s, 2*sha256.Size, len(rest))
	}
	for _, c := range []byte(rest) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("fingerprint %q: want lowercase hex digits", s)
		}
	}
	return nil
}

// LoadOrCreateIdentity reads the identity stored at path (PEM: a PKCS#8 ed25519 key and its
// certificate) or, when there is none or it is unusable, creates one and stores it there (file
// 0600, missing parent directories 0700). An expired certificate is re-issued for the same key, so
// the fingerprint other sides have pinned stays valid.
func LoadOrCreateIdentity(path string) (Identity, error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		id, perr := parseIdentityPEM(data)
		if perr == nil && time.Now().Before(id.cert.Leaf.NotAfter) {
			if err := restrictMode(path); err != nil {
				return Identity{}, err
			}
			return id, nil
		}
		if perr == nil {
			// Expired: keep the key, and with it every pin that names it.
			id, err = issue(id.cert.PrivateKey.(ed25519.PrivateKey), time.Now())
		} else {
			id, err = NewIdentity()
		}
		if err != nil {
			return Identity{}, err
		}
		return id, storeIdentity(path, id, true)
	case errors.Is(err, fs.ErrNotExist):
		id, err := NewIdentity()
		if err != nil {
			return Identity{}, err
		}
		if err := storeIdentity(path, id, false); err != nil {
			if errors.Is(err, fs.ErrExist) {
				// Another process created it first; use theirs so that both agree on one key.
				return LoadOrCreateIdentity(path)
			}
			return Identity{}, err
		}
		return id, nil
	default:
		return Identity{}, fmt.Errorf("read identity %s: %w", path, err)
	}
}

// restrictMode keeps a private key readable only by its owner, even if someone loosened it.
func restrictMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat identity %s: %w", path, err)
	}
	if fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("restrict identity %s to its owner: %w", path, err)
	}
	return nil
}

// storeIdentity writes the identity to a temporary file next to path and then moves it into place,
// so a reader never sees half a file. Without replace it links instead of renaming, which fails
// with fs.ErrExist when a concurrent process got there first.
func storeIdentity(path string, id Identity, replace bool) error {
	data, err := marshalIdentityPEM(id)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create identity directory %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".identity-*.pem") // created 0600
	if err != nil {
		return fmt.Errorf("create identity %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write identity %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write identity %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write identity %s: %w", path, err)
	}
	if replace {
		err = os.Rename(tmp.Name(), path)
	} else {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("store identity %s: %w", path, err)
	}
	return nil
}

func marshalIdentityPEM(id Identity) ([]byte, error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(id.cert.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	var b bytes.Buffer
	pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: id.cert.Certificate[0]})
	return b.Bytes(), nil
}

// parseIdentityPEM accepts exactly what marshalIdentityPEM writes, in any order: one ed25519 key
// and a certificate for that same key.
func parseIdentityPEM(data []byte) (Identity, error) {
	var key ed25519.PrivateKey
	var certDER []byte
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		switch block.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return Identity{}, fmt.Errorf("parse private key: %w", err)
			}
			edKey, ok := k.(ed25519.PrivateKey)
			if !ok {
				return Identity{}, fmt.Errorf("private key is %T, want ed25519", k)
			}
			key = edKey
		case "CERTIFICATE":
			certDER = block.Bytes
		}
	}
	if key == nil || certDER == nil {
		return Identity{}, errors.New("identity needs a private key and a certificate")
	}
	leaf, err := x509.ParseCertificate(certDER)
	if err != nil {
		return Identity{}, fmt.Errorf("parse certificate: %w", err)
	}
	pub, ok := leaf.PublicKey.(ed25519.PublicKey)
	if !ok || !pub.Equal(key.Public()) {
		return Identity{}, errors.New("certificate is not for the private key")
	}
	return Identity{cert: tls.Certificate{Certificate: [][]byte{certDER}, PrivateKey: key, Leaf: leaf}}, nil
}
