// Package bufpool is a pool of byte buffers that keeps only those no larger
// than a bound, so that one large body or answer does not pin its size in
// the pool for good.
package bufpool

import (
	"bytes"
	"sync"
)

// Pool holds buffers of at most Max bytes of capacity.
type Pool struct {
	max  int
	pool sync.Pool
}

// New returns a pool keeping buffers of at most max bytes.
func New(max int) *Pool {
	return &Pool{max: max, pool: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

// Get returns an empty buffer.
func (p *Pool) Get() *bytes.Buffer {
	b := p.pool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

// Put gives b back, unless it grew past the bound. Nothing may use b, or a
// slice of its bytes, afterwards.
func (p *Pool) Put(b *bytes.Buffer) {
	if b.Cap() <= p.max {
		p.pool.Put(b)
	}
}
