package redisstore

import (
	"bytes"
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mkgraph/mkgraph/internal/linkevents"
)

// invalidations records the link ids a bus was told to invalidate.
type invalidations struct {
	mu  sync.Mutex
	ids []string
}

func (i *invalidations) add(id string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.ids = append(i.ids, id)
}

func (i *invalidations) get() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]string(nil), i.ids...)
}

// replicaBus is one replica's bus over the test's Redis.
type replicaBus struct {
	bus   *LinkEvents
	local *linkevents.Local
	inv   *invalidations
	recv  *counter
}

type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) inc() { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *counter) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func newReplicaBus(t *testing.T, c *Client, namespace string) *replicaBus {
	t.Helper()
	r := &replicaBus{local: linkevents.NewLocal(), inv: &invalidations{}, recv: &counter{}}
	r.bus = NewLinkEvents(c, r.local, WithNamespace(namespace), WithInvalidate(r.inv.add), WithDeliver(r.recv.inc))
	t.Cleanup(func() { r.bus.Close(); r.local.Close() })
	return r
}

func waitReady(t *testing.T, b *LinkEvents) {
	t.Helper()
	select {
	case <-b.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("the bus did not subscribe within 5s")
	}
}

func receive(t *testing.T, s *linkevents.Subscription, what string) linkevents.Event {
	t.Helper()
	select {
	case e, ok := <-s.C:
		if !ok {
			t.Fatalf("%s: subscription ended: %v", what, s.Err())
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no event within 5s", what)
	}
	return linkevents.Event{}
}

func nothing(t *testing.T, s *linkevents.Subscription, what string) {
	t.Helper()
	select {
	case e := <-s.C:
		t.Errorf("%s: unexpected event %+v", what, e)
	case <-time.After(100 * time.Millisecond):
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestLinkEventsAcrossReplicas: an event published on one replica reaches
// the subscribers of its link on every replica, once each; invalidations
// reach the others' callbacks, before the events published after them.
func TestLinkEventsAcrossReplicas(t *testing.T) {
	e := newEnv(t)
	a, b, c := newReplicaBus(t, e.open(t), "ns"), newReplicaBus(t, e.open(t), "ns"), newReplicaBus(t, e.open(t), "ns")
	for _, r := range []*replicaBus{a, b, c} {
		waitReady(t, r.bus)
	}
	subA, subB, subC := a.bus.Subscribe("mk_1", 4), b.bus.Subscribe("mk_1", 4), c.bus.Subscribe("mk_1", 4)
	otherLink := b.bus.Subscribe("mk_2", 4)
	ev := linkevents.Event{LinkID: "mk_1", Kind: linkevents.KindProductRefresh, Product: "identity", RefreshState: "COMPLETED",
		OccurredAt: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}

	if err := a.bus.Invalidate(t.Context(), "mk_1"); err != nil {
		t.Fatal(err)
	}
	// The delivery to b checks, when the event arrives, that the
	// invalidation was applied first.
	if err := a.bus.Publish(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*linkevents.Subscription{"a": subA, "b": subB, "c": subC} {
		if got := receive(t, s, name); got != ev {
			t.Errorf("replica %s got %+v, want %+v", name, got, ev)
		}
		if name == "b" || name == "c" {
			inv := map[string]*replicaBus{"b": b, "c": c}[name].inv.get()
			if len(inv) != 1 || inv[0] != "mk_1" {
				t.Errorf("replica %s: invalidations %v when the event came, want [mk_1]", name, inv)
			}
		}
	}
	nothing(t, subA, "a again (its own message echoed)")
	nothing(t, otherLink, "another link's subscriber")
	if got := a.inv.get(); len(got) != 0 {
		t.Errorf("the publishing replica invalidated %v on its own broadcast", got)
	}
	if a.recv.get() != 0 || b.recv.get() != 1 || c.recv.get() != 1 {
		t.Errorf("remote deliveries a=%d b=%d c=%d, want 0 1 1", a.recv.get(), b.recv.get(), c.recv.get())
	}
	e.errs.check(t)

	// Another namespace (another MoneyKit app on the same Redis) hears nothing.
	other := newReplicaBus(t, e.open(t), "other-ns")
	waitReady(t, other.bus)
	sub := other.bus.Subscribe("mk_1", 1)
	a.bus.Publish(t.Context(), ev)
	receive(t, subB, "b, second event")
	nothing(t, sub, "another namespace")

	// Anyone able to reach Redis can publish on the channel: junk is
	// dropped, and an event whose link disagrees with its envelope too.
	rdb := e.rdb
	for _, junk := range []string{"", "{", `{"v":2,"o":"x","t":"event","l":"mk_1","e":{"link_id":"mk_1"}}`,
		`{"v":1,"o":"x","t":"event","l":"mk_1","e":{"link_id":"mk_2"}}`,
		`{"v":1,"o":"x","t":"invalidate","l":"../x\u0000"}`, string(bytes.Repeat([]byte("x"), maxPubSubMessage+1))} {
		rdb.Publish(t.Context(), b.bus.Channel(), junk)
	}
	rdb.Publish(t.Context(), b.bus.Channel(), `{"v":1,"o":"x","t":"invalidate","l":"mk_3"}`)
	waitUntil(t, "the valid invalidation", func() bool { return len(b.inv.get()) == 2 })
	if got := b.inv.get(); got[1] != "mk_3" {
		t.Errorf("invalidations %v, want mk_3 last", got)
	}
	nothing(t, subB, "b after junk")
}

// TestLinkEventsRedisDown: with Redis refusing connections, Publish still
// delivers locally and returns nil, Invalidate says it failed, and both are
// counted as pubsub failures, warned about once.
func TestLinkEventsRedisDown(t *testing.T) {
	d := openDead(t, "")
	local := linkevents.NewLocal()
	defer local.Close()
	bus := NewLinkEvents(d.c, local)
	defer bus.Close()
	sub := bus.Subscribe("mk_1", 4)
	for range 3 {
		if err := bus.Publish(t.Context(), linkevents.Event{LinkID: "mk_1", Kind: linkevents.KindStateChanged}); err != nil {
			t.Fatalf("Publish with Redis down: %v, want nil", err)
		}
		receive(t, sub, "local subscriber")
	}
	if err := bus.Invalidate(t.Context(), "mk_1"); err == nil {
		t.Error("Invalidate with Redis down returned nil")
	}
	if n := d.errs.count(OpPubSub); n < 4 {
		t.Errorf("%d pubsub failures counted, want at least 4", n)
	}
	if n := len(d.log.warnings(t, OpPubSub)); n != 1 {
		t.Errorf("%d pubsub warnings, want 1 (throttled)", n)
	}
}

// TestLinkEventsReconnect: the subscriber loop comes back after its
// connection is lost, and events flow again.
func TestLinkEventsReconnect(t *testing.T) {
	e := newEnv(t)
	u, err := url.Parse(e.url)
	if err != nil {
		t.Fatal(err)
	}
	// The reply to the first SUBSCRIBE is lost with its connection.
	p := newLossyProxy(t, u.Host, func(cmd []byte) bool { return bytes.Contains(bytes.ToLower(cmd), []byte("subscribe")) })
	via := mustOpen(t, Config{URL: "redis://" + p.addr + u.Path, Prefix: e.prefix, Log: zerolog.New(e.log), OnError: e.errs.onError})
	b := newReplicaBus(t, via, "ns")
	a := newReplicaBus(t, e.open(t), "ns")
	waitReady(t, b.bus)
	if !p.fired.Load() {
		t.Fatal("the proxy never dropped a SUBSCRIBE reply")
	}
	if e.errs.count(OpPubSub) == 0 {
		t.Error("the lost subscription was not counted")
	}
	sub := b.bus.Subscribe("mk_1", 1)
	a.bus.Publish(context.Background(), linkevents.Event{LinkID: "mk_1", Kind: linkevents.KindUnknown})
	receive(t, sub, "after the reconnect")
}

// TestLinkEventsClose: Close ends the loop (goleak checks no goroutine is
// left) and may be called twice; Publish after Close still delivers locally.
func TestLinkEventsClose(t *testing.T) {
	e := newEnv(t)
	local := linkevents.NewLocal()
	defer local.Close()
	bus := NewLinkEvents(e.open(t), local)
	waitReady(t, bus)
	bus.Close()
	bus.Close()
	sub := bus.Subscribe("mk_1", 1)
	bus.Publish(t.Context(), linkevents.Event{LinkID: "mk_1"})
	receive(t, sub, "after Close")
}
