package limits

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
)

// A frontend sends the same few query texts over and over, with different
// variables. Check depends on nothing but the limits, the query text and the
// operation name, so the Middleware remembers the texts that passed, by
// hash, and lets them through again without lexing and parsing them (the
// bulk of Check's work, repeated for the same answer). Refusals are not
// remembered: they are cheap, and a hostile client should not be able to
// fill the cache with them.
//
// The key is SHA-256, not a fast non-cryptographic hash: a query crafted
// to collide with one that passed would otherwise skip the limits.

// passedSize bounds the remembered texts: about 100 bytes each, so at most
// ~100 KiB. A client that sends more distinct passing texts than this only
// evicts others, which are then checked again.
const passedSize = 1024

// passKey identifies a query text and operation name.
type passKey [sha256.Size]byte

// passed remembers the query texts that passed Check.
type passed struct {
	cache *lru.Cache[passKey, struct{}]
}

func newPassed() *passed {
	c, err := lru.New[passKey, struct{}](passedSize)
	if err != nil {
		panic(err) // only for a size <= 0
	}
	return &passed{cache: c}
}

// keyBuffers hold the text hashed for a key.
var keyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// passKeyOf returns the key of query and operationName: the hash of the
// query's length, then both, so that no two pairs hash the same text.
func passKeyOf(query, operationName string) passKey {
	bp := keyBuffers.Get().(*[]byte)
	b := binary.LittleEndian.AppendUint64((*bp)[:0], uint64(len(query)))
	b = append(b, query...)
	b = append(b, operationName...)
	k := passKey(sha256.Sum256(b))
	if cap(b) <= maxPooledKey {
		*bp = b
		keyBuffers.Put(bp)
	}
	return k
}

// maxPooledKey bounds the key buffers kept for reuse (queries are at most
// MaxQueryBytes, 16 KiB by default).
const maxPooledKey = 64 << 10

func (p *passed) has(k passKey) bool {
	_, ok := p.cache.Get(k) // Get, not Contains: a hit keeps the text recent
	return ok
}

func (p *passed) add(k passKey) { p.cache.Add(k, struct{}{}) }
