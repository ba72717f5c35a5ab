package cache

import (
	"context"
	"sync"
	"time"

	"github.com/mkgraph/mkgraph/internal/ctxkey"
)

// Info says how one link's answer was served.
type Info struct {
	Stale     bool          // served past TTL because the upstream failed
	Age       time.Duration // since the upstream last answered for it
	FromCache bool          // no upstream answer was fetched for this call
}

// Served says how answers were served, for the response's extensions: put a
// *Served in the context with WithServed before calling; GetIdentity fills
// it per link. It is safe for concurrent use; a nil *Served records nothing.
type Served struct {
	mu      sync.Mutex
	entries map[string]Info
}

var servedKey = ctxkey.New[*Served]("cache.Served")

// WithServed returns ctx carrying a new, empty Served, and that Served.
func WithServed(ctx context.Context) (context.Context, *Served) {
	s := &Served{}
	return servedKey.With(ctx, s), s
}

// servedFrom returns the Served of ctx, or nil.
func servedFrom(ctx context.Context) *Served { return servedKey.From(ctx) }

// record notes how linkID was served. A stale answer is not overwritten by
// a fresh one for the same link: the response may hold either, so it must
// not claim freshness it may not have.
func (s *Served) record(linkID string, info Info) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries == nil {
		s.entries = make(map[string]Info)
	}
	if old, ok := s.entries[linkID]; ok && old.Stale && (!info.Stale || old.Age > info.Age) {
		return
	}
	s.entries[linkID] = info
}

// Get returns how linkID was served, and whether it was.
func (s *Served) Get(linkID string) (Info, bool) {
	if s == nil {
		return Info{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	info, ok := s.entries[linkID]
	return info, ok
}

// AnyStale reports whether any link was served stale, and the greatest age
// among those that were.
func (s *Served) AnyStale() (maxAge time.Duration, stale bool) {
	if s == nil {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, info := range s.entries {
		if info.Stale {
			stale = true
			maxAge = max(maxAge, info.Age)
		}
	}
	return maxAge, stale
}

// ServedFrom returns the Served that WithServed put in ctx, or nil.
func ServedFrom(ctx context.Context) *Served { return servedFrom(ctx) }
