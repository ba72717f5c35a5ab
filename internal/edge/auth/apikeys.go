package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// maxAPIKeyBytes bounds a presented API key: longer ones are refused before
// hashing.
const maxAPIKeyBytes = 512

// maxAPIKeyNameLen bounds a key's name, which ends up in logs and rate-limit
// keys.
const maxAPIKeyNameLen = 64

// HashAPIKey returns the SHA-256 of key in lower-case hex: the form in which
// a backend's API key is written to the MKGRAPH_API_KEYS_FILE, one
// "name sha256hex" per line, so that the file never holds a key itself. The
// shell equivalent is `printf %s "$KEY" | sha256sum`.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// apiKey is one line of the keys file.
type apiKey struct {
	name string
	hash [sha256.Size]byte
}

// keySet holds the backends' key hashes. eq compares two hashes in constant
// time; it is a field only so that a test can count the comparisons.
type keySet struct {
	keys []apiKey
	eq   func(x, y []byte) int
}

// lookup returns the name of the key whose hash is sum. It compares sum with
// every hash, whether or not one matched already, and picks the match
// without a branch, so the time taken says nothing about which key (if any)
// matched. (The file refuses duplicate hashes, so there is at most one.)
func (ks keySet) lookup(sum [sha256.Size]byte) (name string, ok bool) {
	match := -1
	for i := range ks.keys {
		match = subtle.ConstantTimeSelect(ks.eq(ks.keys[i].hash[:], sum[:]), i, match)
	}
	if match < 0 {
		return "", false
	}
	return ks.keys[match].name, true
}

// loadAPIKeys reads the keys file: lines "name sha256hex", with blank lines
// and # comments (whole lines, or after the hash). Errors name the setting
// and the line, never the line's content.
func loadAPIKeys(path string) (keySet, error) {
	ks := keySet{eq: subtle.ConstantTimeCompare}
	data, err := os.ReadFile(path)
	if err != nil {
		return ks, fmt.Errorf("auth: MKGRAPH_API_KEYS_FILE: %w", err)
	}
	names := make(map[string]bool)
	hashes := make(map[[sha256.Size]byte]bool)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) < 2 || (len(f) > 2 && !strings.HasPrefix(f[2], "#")) {
			return ks, fmt.Errorf(`auth: MKGRAPH_API_KEYS_FILE line %d: want "name sha256hex"`, n)
		}
		name, sumHex := f[0], f[1]
		if !validKeyName(name) {
			return ks, fmt.Errorf("auth: MKGRAPH_API_KEYS_FILE line %d: a name is 1 to %d of A-Z a-z 0-9 . _ - : @", n, maxAPIKeyNameLen)
		}
		var k apiKey
		k.name = name
		if len(sumHex) != 2*sha256.Size {
			return ks, fmt.Errorf("auth: MKGRAPH_API_KEYS_FILE line %d: want the key's SHA-256 in hex (64 digits; see auth.HashAPIKey), not the key", n)
		}
		if _, err := hex.Decode(k.hash[:], []byte(sumHex)); err != nil {
			return ks, fmt.Errorf("auth: MKGRAPH_API_KEYS_FILE line %d: the SHA-256 is not hex", n)
		}
		if names[name] {
			return ks, fmt.Errorf("auth: MKGRAPH_API_KEYS_FILE line %d: name %q appears twice", n, name)
		}
		if hashes[k.hash] {
			return ks, fmt.Errorf("auth: MKGRAPH_API_KEYS_FILE line %d: the same key is listed twice", n)
		}
		names[name], hashes[k.hash] = true, true
		ks.keys = append(ks.keys, k)
	}
	if err := sc.Err(); err != nil {
		return ks, fmt.Errorf("auth: MKGRAPH_API_KEYS_FILE: %w", err)
	}
	if len(ks.keys) == 0 {
		return ks, errors.New("auth: MKGRAPH_API_KEYS_FILE lists no keys")
	}
	return ks, nil
}

func validKeyName(s string) bool {
	if s == "" || len(s) > maxAPIKeyNameLen {
		return false
	}
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case strings.ContainsRune("._-:@", r):
		default:
			return false
		}
	}
	return true
}
