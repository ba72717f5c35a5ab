package cache

import (
	"encoding/json"
	"math"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/mkgraph/mkgraph/upstream"
)

// entryOverhead approximates, in bytes, what an entry costs beyond the JSON
// encoding of its identity: the entry struct, otter's node, the key header.
const entryOverhead = 128

// entry is one cached answer. It is never modified once stored: a
// revalidation stores a new entry holding the same identity.
type entry struct {
	identity    *upstream.Identity // shared by every caller; read-only
	fetchedAt   time.Time          // when the upstream last answered for it (Config.Now)
	refreshedAt time.Time          // link.products.identity.refreshed_at; zero when absent
	size        uint32             // weight: approximate bytes, computed once at store
}

// age returns how long ago the upstream answered for e, never negative (a
// clock that steps back makes entries younger, not older than fresh).
func (c *Cache) age(e *entry) time.Duration {
	return max(c.cfg.Now().Sub(e.fetchedAt), 0)
}

// put stores id under key unless the cached entry holds a newer refresh or
// invalidated is set (the answer may predate an Invalidate), and returns the
// entry that answers the callers.
func (c *Cache) put(key string, id *upstream.Identity, invalidated *atomic.Bool) fetched {
	now := c.cfg.Now()
	e, ok := c.newEntry(key, id, now)
	if !ok {
		// It cannot be cached; neither may an older answer stay.
		c.store.Invalidate(key)
		return fetched{entry: e}
	}
	kept := false
	dropped := false
	actual, _ := c.store.Compute(key, func(old *entry, found bool) (*entry, otter.ComputeOp) {
		// Checked inside Compute, which otter runs atomically with
		// Invalidate's removal of the key: either this write comes first
		// and is removed, or it sees the flag.
		if invalidated.Load() {
			dropped = true
			return old, otter.CancelOp
		}
		if found && e.olderThan(old) {
			// The upstream answered from an older refresh than the one we
			// hold (a lagging replica): keep ours, and count it as
			// confirmed now, so that every read does not ask again.
			kept = true
			return &entry{identity: old.identity, fetchedAt: now, refreshedAt: old.refreshedAt, size: old.size}, otter.WriteOp
		}
		return e, otter.WriteOp
	})
	if dropped {
		return fetched{entry: e}
	}
	if actual == nil {
		actual = e
	}
	if !kept {
		c.count(&c.stores, "store")
	}
	return fetched{entry: actual, fromCache: kept}
}

// newEntry returns the entry for id under key, weighed; ok is false when
// it cannot be cached (too large, or not encodable).
func (c *Cache) newEntry(key string, id *upstream.Identity, fetchedAt time.Time) (e *entry, ok bool) {
	e = &entry{identity: id, fetchedAt: fetchedAt, refreshedAt: RefreshedAt(id)}
	size, ok := weigh(key, id)
	if !ok || size > c.cfg.MaxBytes {
		return e, false
	}
	e.size = uint32(size)
	return e, true
}

// olderThan reports whether e holds an older refresh than old (both known).
func (e *entry) olderThan(old *entry) bool {
	return !old.refreshedAt.IsZero() && !e.refreshedAt.IsZero() && e.refreshedAt.Before(old.refreshedAt)
}

// weigh returns the approximate bytes an entry for id costs: its JSON
// encoding, the key and a fixed overhead.
func weigh(key string, id *upstream.Identity) (int64, bool) {
	b, err := json.Marshal(id)
	if err != nil {
		return 0, false
	}
	n := int64(len(b)) + int64(len(key)) + entryOverhead
	return n, n <= math.MaxUint32
}

// RefreshedAt returns link.products.identity.refreshed_at, or zero: what
// orders two answers for one link.
func RefreshedAt(id *upstream.Identity) time.Time {
	if p := id.Link.Products["identity"]; p != nil && p.RefreshedAt.Valid() {
		return p.RefreshedAt.Time
	}
	return time.Time{}
}

// keep stores an entry read from the Shared store unless the local store
// holds a younger answer or a newer refresh, or invalidated is set, and
// returns the entry kept.
func (c *Cache) keep(key string, id *upstream.Identity, fetchedAt time.Time, invalidated *atomic.Bool) *entry {
	e, ok := c.newEntry(key, id, fetchedAt)
	if !ok {
		return e
	}
	actual, _ := c.store.Compute(key, func(old *entry, found bool) (*entry, otter.ComputeOp) {
		if invalidated.Load() {
			return old, otter.CancelOp
		}
		if found && (old.fetchedAt.After(e.fetchedAt) || e.olderThan(old)) {
			return old, otter.CancelOp
		}
		return e, otter.WriteOp
	})
	if actual == nil {
		return e
	}
	return actual
}

// Stats are a Cache's cumulative counters and current size.
type Stats struct {
	Hits        int64 // fresh answers served without an upstream call
	Misses      int64 // calls that found no fresh entry (joined or started an upstream call)
	StaleServes int64 // stale entries served because the upstream failed
	Stores      int64 // upstream answers stored
	Evictions   int64 // entries dropped to stay within MaxBytes (not expiries)
	Bytes       int64 // approximate bytes held now
	SharedHits  int64 // fresh answers read from the Shared store (another replica's upstream call)
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits:        c.hits.Load(),
		Misses:      c.misses.Load(),
		StaleServes: c.staleServes.Load(),
		Stores:      c.stores.Load(),
		Evictions:   c.evictions.Load(),
		Bytes:       int64(c.store.WeightedSize()),
		SharedHits:  c.sharedHits.Load(),
	}
}

// clock is Config.Now as an otter.Clock.
type clock struct{ now func() time.Time }

func (c clock) NowNano() int64 { return c.now().UnixNano() }

// Tick returns no ticks: a custom clock need not advance with real time, so
// periodic clean-ups would be meaningless.
func (clock) Tick(time.Duration) <-chan time.Time { return nil }

// count bumps a counter and tells OnResult.
func (c *Cache) count(n *atomic.Int64, result string) {
	n.Add(1)
	if c.cfg.OnResult != nil {
		c.cfg.OnResult(result)
	}
}
