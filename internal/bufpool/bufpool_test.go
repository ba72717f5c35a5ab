package bufpool

import "testing"

func TestPool(t *testing.T) {
	p := New(16)
	b := p.Get()
	b.WriteString("hello")
	p.Put(b)
	if got := p.Get(); got.Len() != 0 {
		t.Errorf("Get returned a buffer holding %q, want it empty", got.String())
	}
	big := p.Get()
	big.Grow(1 << 10)
	p.Put(big) // not kept: over the bound
	for range 100 {
		if b := p.Get(); b.Cap() > 16 {
			t.Fatalf("Get returned a buffer of capacity %d, over the pool's bound", b.Cap())
		}
	}
}
