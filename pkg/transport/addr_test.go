package transport

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestSessionTokenStaysSecret: the token is what continues a session, so neither its ID, nor the
// session's addresses, nor a log line that formats it by mistake show it.
func TestSessionTokenStaysSecret(t *testing.T) {
	tok, err := newSessionToken()
	if err != nil {
		t.Fatal(err)
	}
	secret := hex.EncodeToString(tok[:])
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "token", tok)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "token", tok)
	shown := map[string]string{
		"id":             tok.id().String(),
		"client address": streamAddr{id: tok.id(), role: "client"}.String(),
		"fmt %v":         fmt.Sprintf("%v %s", tok, tok),
		"slog":           logged.String(),
	}
	for what, s := range shown {
		if strings.Contains(s, secret) {
			t.Errorf("%s shows the token: %s", what, s)
		}
	}
	if other, _ := newSessionToken(); other.id() == tok.id() {
		t.Error("two tokens share an id")
	}
}
