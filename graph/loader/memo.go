package loader

import (
	"runtime"
	"sync"
	"weak"

	"github.com/mkgraph/mkgraph/graph/model"
	"github.com/mkgraph/mkgraph/upstream"
)

// Bounds of the model memo (Config.ShareModels).
const (
	memoMaxLinks    = 256 // links remembered at once
	memoMaxAccounts = 16  // larger links are converted each time: their models are large
)

// memo remembers the model built from an identity answer for as long as
// the answer itself lives (the identity cache's entry): a cached link read
// by many requests is converted once, not once per request. Models are
// read-only once built, so requests share them as they share the answer.
// Keys are weak: an answer the cache has dropped is collected, and its
// model with it.
type memo struct {
	mu    sync.Mutex
	links map[weak.Pointer[upstream.Identity]]memoEntry
}

// memoEntry is a model and the cleanup that forgets it when its answer is
// collected; an entry forgotten earlier (the memo was full) stops its
// cleanup, so that an answer read again and again does not gather one each.
type memoEntry struct {
	link    *model.Link
	cleanup runtime.Cleanup
}

func newMemo() *memo {
	return &memo{links: make(map[weak.Pointer[upstream.Identity]]memoEntry)}
}

// link returns id's model, building it with build the first time.
func (m *memo) link(id *upstream.Identity, build func() *model.Link) *model.Link {
	if m == nil || len(id.Accounts) > memoMaxAccounts {
		return build()
	}
	k := weak.Make(id)
	m.mu.Lock()
	e, ok := m.links[k]
	m.mu.Unlock()
	if ok {
		return e.link
	}
	l := build()
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev, ok := m.links[k]; ok {
		return prev.link // built by another request meanwhile
	}
	if len(m.links) >= memoMaxLinks {
		for old, e := range m.links { // full: forget one, any one
			e.cleanup.Stop()
			delete(m.links, old)
			break
		}
	}
	m.links[k] = memoEntry{link: l, cleanup: runtime.AddCleanup(id, m.forget, k)}
	return l
}

func (m *memo) forget(k weak.Pointer[upstream.Identity]) {
	m.mu.Lock()
	delete(m.links, k)
	m.mu.Unlock()
}
