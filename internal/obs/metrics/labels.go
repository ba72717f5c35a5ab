package metrics

import (
	"sync"
)

// capped bounds the distinct values of one label: values of the wrong shape,
// and new values once max are known, become Other. Every series lives as long
// as the process, so a client inventing a fresh operation name per request
// must not be able to grow the registry without bound.
type capped struct {
	max   int
	valid func(string) bool

	mu   sync.RWMutex
	seen map[string]struct{}
}

func newCapped(max int, valid func(string) bool) *capped {
	return &capped{max: max, valid: valid, seen: make(map[string]struct{}, max)}
}

// value returns v when it may be used as a label value, else Other.
func (c *capped) value(v string) string {
	if !c.valid(v) {
		return Other
	}
	c.mu.RLock()
	_, ok := c.seen[v]
	c.mu.RUnlock()
	if ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[v]; ok {
		return v
	}
	if len(c.seen) >= c.max {
		return Other
	}
	c.seen[v] = struct{}{}
	return v
}
