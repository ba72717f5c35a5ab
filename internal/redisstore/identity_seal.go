package redisstore

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/cache"
)

// sealVersion starts every sealed value: the format described on Identities,
// so that a later format can be told apart.
const sealVersion = 2

// refreshedSize is the size of the refreshed_at trailer: Unix milliseconds,
// big-endian, 48 bits (exact in Lua's doubles, good until the year 10889).
const refreshedSize = 6

// payload is what a sealed value holds.
type payload struct {
	FetchedAt int64           `json:"fetched_at"`       // Unix nanoseconds, the writer's clock
	TTL       int64           `json:"ttl_ms,omitempty"` // the PX it was written with: its age is TTL − PTTL on Redis's clock
	AgeAtSet  int64           `json:"age_ms,omitempty"` // its age when written, on the writer's clock
	Identity  json.RawMessage `json:"identity"`         // MoneyKit's own encoding
}

func (s *Identities) sealEntry(rk string, e cache.SharedEntry, ttl time.Duration) ([]byte, error) {
	id, err := json.Marshal(e.Identity)
	if err != nil {
		return nil, fmt.Errorf("encoding an identity for the shared cache: %w", err)
	}
	age := max(time.Since(e.FetchedAt), 0) // after the costly encoding: as of the write
	plain, err := json.Marshal(payload{FetchedAt: e.FetchedAt.UnixNano(), TTL: ttl.Milliseconds(), AgeAtSet: age.Milliseconds(), Identity: id})
	if err != nil {
		return nil, err
	}
	return s.seal(s.keys[0], rk, refreshedTrailer(cache.RefreshedAt(e.Identity)), plain), nil
}

// seal returns version | key id | nonce | AES-GCM(plain) | trailer, with rk
// and the trailer as additional data.
func (s *Identities) seal(k sealer, rk string, trailer [refreshedSize]byte, plain []byte) []byte {
	nonceSize := k.aead.NonceSize()
	out := make([]byte, 1+4+nonceSize, 1+4+nonceSize+len(plain)+k.aead.Overhead()+refreshedSize)
	out[0] = sealVersion
	copy(out[1:5], k.id[:])
	rand.Read(out[5 : 5+nonceSize])
	out = k.aead.Seal(out, out[5:5+nonceSize], plain, additionalData(rk, trailer))
	return append(out, trailer[:]...)
}

func additionalData(rk string, trailer [refreshedSize]byte) []byte {
	return append([]byte(rk), trailer[:]...)
}

// refreshedTrailer encodes t as Unix milliseconds in 48 bits; zero (and
// anything before 1970) is 0, "unknown".
func refreshedTrailer(t time.Time) [refreshedSize]byte {
	var out [refreshedSize]byte
	if t.IsZero() || t.UnixMilli() <= 0 {
		return out
	}
	ms := uint64(t.UnixMilli())
	for i := refreshedSize - 1; i >= 0; i-- {
		out[i] = byte(ms)
		ms >>= 8
	}
	return out
}

var errUnseal = errors.New("a shared identity cache value did not open with the configured keys (replicas with different MKGRAPH_REDIS_ENCRYPTION_KEY, or a foreign value)")

// unseal opens b, found under rk, the name of key o, and returns the PX
// it was written with (0 if unknown) and its age then.
func (s *Identities) unseal(o sealer, rk string, b []byte) (e cache.SharedEntry, ttl, ageAtSet time.Duration, err error) {
	n := o.aead.NonceSize()
	if len(b) < 1+4+n+refreshedSize || b[0] != sealVersion || [4]byte(b[1:5]) != o.id {
		return cache.SharedEntry{}, 0, 0, errUnseal
	}
	trailer := [refreshedSize]byte(b[len(b)-refreshedSize:])
	plain, err := o.aead.Open(nil, b[5:5+n], b[5+n:len(b)-refreshedSize], additionalData(rk, trailer))
	if err != nil {
		return cache.SharedEntry{}, 0, 0, errUnseal
	}
	var p payload
	if err := json.Unmarshal(plain, &p); err != nil {
		return cache.SharedEntry{}, 0, 0, errors.New("a shared identity cache value did not decode")
	}
	id, err := upstream.DecodeIdentity(p.Identity)
	if err != nil {
		return cache.SharedEntry{}, 0, 0, errors.New("a shared identity cache value is not a valid identity answer")
	}
	return cache.SharedEntry{Identity: id, FetchedAt: time.Unix(0, p.FetchedAt)},
		time.Duration(p.TTL) * time.Millisecond, time.Duration(p.AgeAtSet) * time.Millisecond, nil
}
