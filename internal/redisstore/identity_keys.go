package redisstore

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of an identity cache encryption key: AES-256.
const KeySize = 32

// ParseKeys parses MKGRAPH_REDIS_ENCRYPTION_KEY: comma-separated keys, each
// 32 bytes in base64 (standard or URL alphabet, padded or not) or 64 hex
// digits. The error never quotes a key.
func ParseKeys(s string) ([][]byte, error) {
	var keys [][]byte
	for i, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k, ok := decodeKey(f)
		if !ok {
			return nil, fmt.Errorf("key %d is not %d bytes in base64 or hex (make one with: openssl rand -base64 32)", i+1, KeySize)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no key given")
	}
	return keys, nil
}

func decodeKey(s string) ([]byte, bool) {
	if len(s) == 2*KeySize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, true
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == KeySize {
			return k, true
		}
	}
	return nil, false
}

// DeriveKey derives an identity cache key from the MoneyKit client secret
// (HKDF-SHA256, salted with the client id), for deployments that set no key
// of their own: every replica has the secret, nobody who only reads Redis
// does. Rotating the secret then empties the shared cache (old values no
// longer open and are refetched).
func DeriveKey(clientSecret, clientID string) []byte {
	k, err := hkdf.Key(sha256.New, []byte(clientSecret), []byte(clientID), "mkgraph identity cache v1", KeySize)
	if err != nil {
		panic(err) // only for lengths hkdf refuses; KeySize is fine
	}
	return k
}

// NameKey derives, from an encryption key, the Config.NameKey that hides
// link ids and callers in the names of budget and limit keys. (Rotating the
// key renames them: budgets and limits then start afresh, for at most a
// minute's worth.)
func NameKey(key []byte) []byte {
	k, err := hkdf.Key(sha256.New, key, nil, "mkgraph redis key names v1", 32)
	if err != nil {
		panic(err) // only for lengths hkdf refuses
	}
	return k
}

// redisKey returns the Redis key of a cache key under the sealing key, in
// namespace kind.
func (s *Identities) redisKey(kind, key string) string { return s.keyUnder(s.keys[0], kind, key) }

// keyUnder returns the Redis key of a cache key under encryption key k, in
// namespace kind.
func (s *Identities) keyUnder(k sealer, kind, key string) string {
	m := hmac.New(sha256.New, k.namer)
	m.Write([]byte(key))
	return s.c.key(kind, hex.EncodeToString(m.Sum(nil)))
}

// redisKeys returns the Redis keys of a cache key under every encryption
// key, the sealing key's first.
func (s *Identities) redisKeys(kind, key string) []string {
	out := make([]string, len(s.keys))
	for i, k := range s.keys {
		out[i] = s.keyUnder(k, kind, key)
	}
	return out
}
