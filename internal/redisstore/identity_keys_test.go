package redisstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNewIdentitiesRejects(t *testing.T) {
	c := &Client{} // NewIdentities does not use it
	tests := []struct {
		name string
		keys [][]byte
	}{
		{"no key", nil},
		{"empty list", [][]byte{}},
		{"16-byte key", [][]byte{bytes.Repeat([]byte("k"), 16)}},
		{"33-byte key", [][]byte{bytes.Repeat([]byte("k"), 33)}},
		{"second key short", [][]byte{testKey(1), bytes.Repeat([]byte("k"), 31)}},
		{"empty key", [][]byte{{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewIdentities(c, tt.keys)
			if err == nil || s != nil {
				t.Fatalf("NewIdentities = %v, %v; want an error", s, err)
			}
			for _, k := range tt.keys {
				if len(k) > 0 && strings.Contains(err.Error(), string(k)) {
					t.Errorf("error %q quotes a key", err)
				}
			}
		})
	}
}

func TestParseKeys(t *testing.T) {
	// Bytes whose base64 has '+' and '/' (so standard and URL alphabets
	// differ) and a trailing '=' when padded.
	key := bytes.Repeat([]byte{0xfb, 0xef, 0xbe, 0xff}, 8)
	other := testKey(0x42)
	std := base64.StdEncoding.EncodeToString(key)
	if !strings.ContainsAny(std, "+/") || !strings.HasSuffix(std, "=") {
		t.Fatalf("test key %q does not exercise the alphabets", std)
	}
	tests := []struct {
		name string
		in   string
		want [][]byte
	}{
		{"base64 standard padded", std, [][]byte{key}},
		{"base64 standard raw", base64.RawStdEncoding.EncodeToString(key), [][]byte{key}},
		{"base64 URL padded", base64.URLEncoding.EncodeToString(key), [][]byte{key}},
		{"base64 URL raw", base64.RawURLEncoding.EncodeToString(key), [][]byte{key}},
		{"hex lower", hex.EncodeToString(key), [][]byte{key}},
		{"hex upper", strings.ToUpper(hex.EncodeToString(key)), [][]byte{key}},
		{"spaces around", "  " + std + "\t", [][]byte{key}},
		{"two keys, order kept", hex.EncodeToString(other) + ", " + std, [][]byte{other, key}},
		{"empty fields skipped", "," + std + ",,", [][]byte{key}},
		{"64 hex digits that are also base64 decode as hex", strings.Repeat("ab", 32), [][]byte{bytes.Repeat([]byte{0xab}, 32)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeys(tt.in)
			if err != nil {
				t.Fatalf("ParseKeys: %v", err)
			}
			if !cmp.Equal(got, tt.want) {
				t.Errorf("ParseKeys = %x, want %x", got, tt.want)
			}
		})
	}

	bad := []struct {
		name, in, secret string
	}{
		{"31 bytes base64", base64.StdEncoding.EncodeToString(key[:31]), base64.StdEncoding.EncodeToString(key[:31])},
		{"33 bytes base64", base64.StdEncoding.EncodeToString(append(key, 1)), base64.StdEncoding.EncodeToString(append(key, 1))},
		{"16 bytes base64", base64.StdEncoding.EncodeToString(key[:16]), base64.StdEncoding.EncodeToString(key[:16])},
		{"63 hex digits", hex.EncodeToString(key)[:63], hex.EncodeToString(key)[:63]},
		{"65 hex digits", hex.EncodeToString(key) + "a", hex.EncodeToString(key) + "a"},
		{"62 hex digits", hex.EncodeToString(key[:31]), hex.EncodeToString(key[:31])},
		{"64 non-hex characters", strings.Repeat("zq", 32), strings.Repeat("zq", 32)},
		{"a passphrase", "correct horse battery staple!", "correct horse battery staple!"},
		{"second of two bad", std + ",hunter2-not-a-key-at-all", "hunter2-not-a-key-at-all"},
		{"empty", "", ""},
		{"only commas and spaces", " , ,", ""},
	}
	for _, tt := range bad {
		t.Run("rejects "+tt.name, func(t *testing.T) {
			got, err := ParseKeys(tt.in)
			if err == nil {
				t.Fatalf("ParseKeys(%q) = %x, want an error", tt.in, got)
			}
			if got != nil {
				t.Errorf("ParseKeys returned keys %x with its error", got)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error %q quotes the key", err)
			}
			if strings.Contains(err.Error(), std) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q quotes a key", err)
			}
		})
	}
	if _, err := ParseKeys(std + ",hunter2-not-a-key-at-all"); err == nil || !strings.Contains(err.Error(), "key 2") {
		t.Errorf("error %v does not say which key is bad", err)
	}
}

func TestDeriveKey(t *testing.T) {
	base := DeriveKey("secret", "client")
	if len(base) != KeySize {
		t.Fatalf("DeriveKey returned %d bytes, want %d", len(base), KeySize)
	}
	if again := DeriveKey("secret", "client"); !bytes.Equal(again, base) {
		t.Error("DeriveKey is not deterministic")
	}
	tests := []struct{ name, secret, clientID string }{
		{"another secret", "secret2", "client"},
		{"another client id", "secret", "client2"},
		{"empty client id", "secret", ""},
		{"boundary moved", "secretc", "lient"},
		{"swapped", "client", "secret"},
	}
	seen := map[string]string{hex.EncodeToString(base): "base"}
	for _, tt := range tests {
		k := DeriveKey(tt.secret, tt.clientID)
		if len(k) != KeySize {
			t.Errorf("%s: %d bytes", tt.name, len(k))
		}
		if prev, dup := seen[hex.EncodeToString(k)]; dup {
			t.Errorf("%s derives the same key as %s", tt.name, prev)
		}
		seen[hex.EncodeToString(k)] = tt.name
	}
	// Not the secret, nor a plain hash of it.
	if sum := sha256.Sum256([]byte("secret")); bytes.Equal(base, sum[:]) || bytes.Contains(base, []byte("secret")) {
		t.Error("DeriveKey is a plain hash of the secret")
	}
	// A derived key works as an identity key.
	if _, err := NewIdentities(&Client{}, [][]byte{base}); err != nil {
		t.Errorf("NewIdentities(DeriveKey(...)): %v", err)
	}
}
