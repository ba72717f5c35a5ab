package upstream

// slab hands out values of one type from shared chunks, so that a decoded
// answer costs a few allocations however many optional fields and lists it
// holds. Chunks double from first to last elements; what a value points into
// stays alive with it, which is the answer it belongs to anyway.
type slab[T any] struct {
	chunk       []T
	used        int
	first, last int  // chunk sizes
	open        bool // an array is being appended to in place
}

func (s *slab[T]) grow() {
	n := s.first
	if len(s.chunk) > 0 {
		n = min(2*len(s.chunk), s.last)
	}
	s.chunk, s.used = make([]T, n), 0
}

// one returns a new zero value.
func (s *slab[T]) one() *T {
	if s.open {
		return new(T)
	}
	if s.used == len(s.chunk) {
		s.grow()
	}
	s.used++
	return &s.chunk[s.used-1]
}

// start returns an empty slice to append an array's elements to, in place
// in the chunk while they fit (ok false: there is none, append to nil). The
// chunk's unused part is zero: nothing else is written there until finish.
func (s *slab[T]) start() (v []T, ok bool) {
	if s.open {
		return nil, false
	}
	if len(s.chunk)-s.used < 4 {
		s.grow()
	}
	s.open = true
	return s.chunk[s.used:s.used], true
}

// finish ends the array that start began and returns it, capped at its
// length so that appending to it never writes over its neighbours.
func (s *slab[T]) finish(v []T) []T {
	s.open = false
	if cap(v) == len(s.chunk)-s.used {
		s.used += len(v)
		return v[:len(v):len(v)]
	}
	// append moved the array out of the chunk after writing the chunk's
	// rest, which is no longer zero: start the next array in a new chunk.
	s.used = len(s.chunk)
	return v
}
