package webhook

import (
	"container/list"
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// ClaimState is what Store.Claim found.
type ClaimState int

const (
	// Claimed: the key was free and is now held by this token (in
	// progress): apply the event, then Confirm or Release.
	Claimed ClaimState = iota
	// Done: the key's event was applied already.
	Done
	// Busy: another delivery holds the key and is applying it.
	Busy
)

func (s ClaimState) String() string {
	switch s {
	case Claimed:
		return "claimed"
	case Done:
		return "done"
	case Busy:
		return "busy"
	}
	return "invalid"
}

// Store remembers idempotency keys, claim then confirm, so that concurrent
// deliveries of one event apply it once and a failed apply can be retried.
// Implementations must be safe for concurrent use. Only verified deliveries
// reach it.
type Store interface {
	// Claim marks key in progress under token for at most lease, unless it
	// is Done or held by another token (Busy).
	Claim(ctx context.Context, key, token string, lease time.Duration) (ClaimState, error)
	// Confirm records key as applied for ttl.
	Confirm(ctx context.Context, key, token string, ttl time.Duration) error
	// Release frees key if token still holds it (the apply failed).
	Release(ctx context.Context, key, token string) error
}

// MemoryStore is the Store of one replica: a map bounded by a number of
// keys, each with its own expiry. Expired keys at the front are dropped as
// new ones come; when full, the oldest goes. Keys are held as SHA-256 sums (a fixed 32 bytes each).
type MemoryStore struct {
	max int
	now func() time.Time

	mu    sync.Mutex
	byKey map[[sha256.Size]byte]*list.Element
	order *list.List // of *memEntry, oldest write first
}

type memEntry struct {
	key     [sha256.Size]byte
	token   string // "" once done
	done    bool
	expires time.Time
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns a MemoryStore of at most maxKeys keys (0:
// DefaultMaxKeys) on the clock now (nil: time.Now).
func NewMemoryStore(maxKeys int, now func() time.Time) *MemoryStore {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{max: maxKeys, now: now, byKey: map[[sha256.Size]byte]*list.Element{}, order: list.New()}
}

// Len returns the number of keys held (expired ones included until they are
// dropped).
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byKey)
}

// lookup returns key's live entry, dropping it if it expired.
func (m *MemoryStore) lookup(k [sha256.Size]byte, now time.Time) *memEntry {
	el, ok := m.byKey[k]
	if !ok {
		return nil
	}
	e := el.Value.(*memEntry)
	if !now.Before(e.expires) {
		m.order.Remove(el)
		delete(m.byKey, k)
		return nil
	}
	return e
}

// put writes key's entry as the newest, making room first.
func (m *MemoryStore) put(e *memEntry, now time.Time) {
	if el, ok := m.byKey[e.key]; ok {
		m.order.Remove(el)
		delete(m.byKey, e.key)
	}
	// Expired entries at the front go first (amortized: each is dropped
	// once); then, while full, the oldest.
	for el := m.order.Front(); el != nil; el = m.order.Front() {
		old := el.Value.(*memEntry)
		if now.Before(old.expires) && len(m.byKey) < m.max {
			break
		}
		m.order.Remove(el)
		delete(m.byKey, old.key)
	}
	m.byKey[e.key] = m.order.PushBack(e)
}

// Claim implements Store.
func (m *MemoryStore) Claim(_ context.Context, key, token string, lease time.Duration) (ClaimState, error) {
	k := sha256.Sum256([]byte(key))
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if e := m.lookup(k, now); e != nil {
		switch {
		case e.done:
			return Done, nil
		case e.token != token:
			return Busy, nil
		}
	}
	m.put(&memEntry{key: k, token: token, expires: now.Add(lease)}, now)
	return Claimed, nil
}

// Confirm implements Store.
func (m *MemoryStore) Confirm(_ context.Context, key, _ string, ttl time.Duration) error {
	k := sha256.Sum256([]byte(key))
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.put(&memEntry{key: k, done: true, expires: now.Add(ttl)}, now)
	return nil
}

// Release implements Store.
func (m *MemoryStore) Release(_ context.Context, key, token string) error {
	k := sha256.Sum256([]byte(key))
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.lookup(k, m.now()); e != nil && !e.done && e.token == token {
		m.order.Remove(m.byKey[k])
		delete(m.byKey, k)
	}
	return nil
}

// Applied reports whether key was confirmed and has not expired, without
// claiming it (a shared Store asks it before a round trip).
func (m *MemoryStore) Applied(key string) bool {
	k := sha256.Sum256([]byte(key))
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.lookup(k, m.now())
	return e != nil && e.done
}
