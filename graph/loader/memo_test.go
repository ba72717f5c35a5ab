package loader

import (
	"runtime"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/graph/model"
	"github.com/mkgraph/mkgraph/upstream"
)

func identityWith(accounts int) *upstream.Identity {
	id := &upstream.Identity{Link: upstream.Link{LinkID: "mk_memo"}}
	for i := range accounts {
		id.Accounts = append(id.Accounts, upstream.Account{AccountID: "acc_" + string(rune('a'+i%26))})
	}
	return id
}

func TestMemo(t *testing.T) {
	m := newMemo()
	builds := 0
	build := func(id *upstream.Identity) func() *model.Link {
		return func() *model.Link { builds++; return model.NewLink(id, nil) }
	}
	a, b := identityWith(3), identityWith(3)
	la := m.link(a, build(a))
	if again := m.link(a, build(a)); again != la || builds != 1 {
		t.Errorf("the same answer twice: %d builds, same model %v; want 1 build, the same model", builds, again == la)
	}
	if lb := m.link(b, build(b)); lb == la || builds != 2 {
		t.Errorf("another answer: %d builds, same model %v; want its own", builds, lb == la)
	}
	large := identityWith(memoMaxAccounts + 1)
	m.link(large, build(large))
	m.link(large, build(large))
	if builds != 4 {
		t.Errorf("a link of %d accounts: %d builds in all, want it converted each time", memoMaxAccounts+1, builds)
	}
	var nilMemo *memo
	if l := nilMemo.link(a, build(a)); l == nil || builds != 5 {
		t.Errorf("no memo: want a build each time")
	}

	// Past the bound, one is forgotten for each new one, the answers all
	// alive; an answer forgotten and read again is converted again.
	live := make([]*upstream.Identity, memoMaxLinks+10)
	for i := range live {
		live[i] = identityWith(1)
		m.link(live[i], build(live[i]))
	}
	m.mu.Lock()
	n := len(m.links)
	m.mu.Unlock()
	if n != memoMaxLinks {
		t.Errorf("%d models kept, want %d", n, memoMaxLinks)
	}
	before := builds
	for _, id := range live {
		m.link(id, build(id))
	}
	if builds == before {
		t.Errorf("answers forgotten when the memo was full were not converted again")
	}
	runtime.KeepAlive(live)
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
}

// A model goes when its answer does.
func TestMemoForgetsCollectedAnswers(t *testing.T) {
	m := newMemo()
	func() {
		id := identityWith(2)
		m.link(id, func() *model.Link { return model.NewLink(id, nil) })
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		m.mu.Lock()
		n := len(m.links)
		m.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d models kept after their answers were collected", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
