package transport

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIdentityFingerprint(t *testing.T) {
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	fp := id.Fingerprint()
	if err := ValidateFingerprint(fp); err != nil {
		t.Fatalf("own fingerprint %q: %v", fp, err)
	}
	sum := sha256.Sum256(id.Certificate().Leaf.RawSubjectPublicKeyInfo)
	if want := "sha256:" + hex.EncodeToString(sum[:]); fp != want {
		t.Errorf("fingerprint %s, want %s", fp, want)
	}
	if _, ok := id.Certificate().PrivateKey.(ed25519.PrivateKey); !ok {
		t.Errorf("private key is %T, want ed25519", id.Certificate().PrivateKey)
	}

	// The fingerprint names the key: a new certificate for the same key keeps it.
	reissued, err := issue(id.Certificate().PrivateKey.(ed25519.PrivateKey), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if reissued.Fingerprint() != fp {
		t.Errorf("re-issued certificate has fingerprint %s, want %s", reissued.Fingerprint(), fp)
	}
	if string(reissued.Certificate().Certificate[0]) == string(id.Certificate().Certificate[0]) {
		t.Error("re-issue returned the same certificate")
	}

	other, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if other.Fingerprint() == fp {
		t.Error("two new identities share a fingerprint")
	}
}

func TestValidateFingerprint(t *testing.T) {
	good := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	tests := []struct {
		name, fp string
		ok       bool
	}{
		{name: "valid", fp: good, ok: true},
		{name: "empty", fp: ""},
		{name: "no prefix", fp: strings.TrimPrefix(good, "sha256:")},
		{name: "other hash", fp: "sha1:" + strings.TrimPrefix(good, "sha256:")},
		{name: "short", fp: good[:len(good)-1]},
		{name: "long", fp: good + "0"},
		{name: "uppercase", fp: strings.ToUpper(good[:7]) + strings.ToUpper(good[7:])},
		{name: "not hex", fp: good[:len(good)-1] + "g"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ValidateFingerprint(tt.fp); (err == nil) != tt.ok {
				t.Errorf("ValidateFingerprint(%q) = %v, want ok=%v", tt.fp, err, tt.ok)
			}
		})
	}
}

func TestLoadOrCreateIdentity(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config", "remocal", "identity.pem")

	first, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	assertMode(t, path, 0o600)
	assertMode(t, filepath.Dir(path), 0o700)
	assertMode(t, filepath.Dir(filepath.Dir(path)), 0o700)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range []string{"-----BEGIN PRIVATE KEY-----", "-----BEGIN CERTIFICATE-----"} {
		if !strings.Contains(string(data), block) {
			t.Errorf("identity file lacks %s", block)
		}
	}

	t.Run("reused", func(t *testing.T) {
		again, err := LoadOrCreateIdentity(path)
		if err != nil {
			t.Fatal(err)
		}
		if again.Fingerprint() != first.Fingerprint() {
			t.Errorf("reloaded fingerprint %s, want %s", again.Fingerprint(), first.Fingerprint())
		}
	})

	t.Run("loose mode tightened", func(t *testing.T) {
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateIdentity(path); err != nil {
			t.Fatal(err)
		}
		assertMode(t, path, 0o600)
	})

	t.Run("expired certificate re-issued for the same key", func(t *testing.T) {
		old, err := issue(first.Certificate().PrivateKey.(ed25519.PrivateKey), time.Now().Add(-2*certValidity))
		if err != nil {
			t.Fatal(err)
		}
		if err := storeIdentity(path, old, true); err != nil {
			t.Fatal(err)
		}
		id, err := LoadOrCreateIdentity(path)
		if err != nil {
			t.Fatal(err)
		}
		if id.Fingerprint() != first.Fingerprint() {
			t.Errorf("fingerprint changed to %s, want %s", id.Fingerprint(), first.Fingerprint())
		}
		if !time.Now().Before(id.Certificate().Leaf.NotAfter) {
			t.Errorf("certificate still expired: %v", id.Certificate().Leaf.NotAfter)
		}
		stored, err := LoadOrCreateIdentity(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(stored.Certificate().Certificate[0]) != string(id.Certificate().Certificate[0]) {
			t.Error("re-issued certificate was not stored")
		}
	})

	t.Run("unusable file replaced", func(t *testing.T) {
		other, err := NewIdentity()
		if err != nil {
			t.Fatal(err)
		}
		mismatched, err := marshalIdentityPEM(Identity{cert: first.Certificate()})
		if err != nil {
			t.Fatal(err)
		}
		otherPEM, err := marshalIdentityPEM(other)
		if err != nil {
			t.Fatal(err)
		}
		// The key of one identity with the certificate of another.
		keyOnly, _, _ := strings.Cut(string(mismatched), "-----BEGIN CERTIFICATE-----")
		_, certOnly, _ := strings.Cut(string(otherPEM), "-----END PRIVATE KEY-----\n")
		for name, content := range map[string]string{
			"garbage":          "not a pem file",
			"empty":            "",
			"key only":         keyOnly,
			"key of another":   keyOnly + certOnly,
			"truncated":        string(mismatched[:len(mismatched)/2]),
			"certificate only": certOnly,
		} {
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			id, err := LoadOrCreateIdentity(path)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			again, err := LoadOrCreateIdentity(path)
			if err != nil {
				t.Fatalf("%s: reload: %v", name, err)
			}
			if again.Fingerprint() != id.Fingerprint() {
				t.Errorf("%s: the replacement was not stored", name)
			}
			assertMode(t, path, 0o600)
		}
	})

	t.Run("unreadable directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads everything")
		}
		locked := filepath.Join(dir, "locked")
		if err := os.Mkdir(locked, 0o000); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateIdentity(filepath.Join(locked, "identity.pem")); err == nil {
			t.Error("no error for an identity in an unreadable directory")
		}
	})
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}
