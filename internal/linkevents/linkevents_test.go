package linkevents_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mkgraph/mkgraph/internal/linkevents"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func event(link string) linkevents.Event {
	return linkevents.Event{LinkID: link, Kind: linkevents.KindProductRefresh, Product: "identity", RefreshState: "COMPLETED", OccurredAt: time.Unix(1, 0).UTC()}
}

func TestDeliveryToTheLinksSubscribersOnly(t *testing.T) {
	b := linkevents.NewLocal()
	a1, a2, other := b.Subscribe("a", 4), b.Subscribe("a", 4), b.Subscribe("b", 4)
	if err := b.Publish(context.Background(), event("a")); err != nil {
		t.Fatal(err)
	}
	for i, s := range []*linkevents.Subscription{a1, a2} {
		select {
		case e := <-s.C:
			if e.LinkID != "a" {
				t.Errorf("subscriber %d got %+v", i, e)
			}
		case <-time.After(time.Second):
			t.Fatalf("subscriber %d got nothing", i)
		}
	}
	select {
	case e := <-other.C:
		t.Errorf("subscriber of b got %+v", e)
	default:
	}
	if links, subs := b.Links(); links != 2 || subs != 3 {
		t.Errorf("Links() = %d, %d; want 2, 3", links, subs)
	}
	for _, s := range []*linkevents.Subscription{a1, a2, other} {
		s.Cancel()
		s.Cancel() // twice is fine
		if _, open := <-s.C; open {
			t.Error("channel open after Cancel")
		}
		if err := s.Err(); err != nil {
			t.Errorf("Err after Cancel = %v, want nil", err)
		}
	}
	if links, subs := b.Links(); links != 0 || subs != 0 {
		t.Errorf("after Cancel: Links() = %d, %d; want 0, 0", links, subs)
	}
}

// A slow consumer is ended with ErrSlowConsumer; it never blocks the
// publisher or another subscriber.
func TestSlowConsumerDropped(t *testing.T) {
	b := linkevents.NewLocal()
	slow, fast := b.Subscribe("a", 1), b.Subscribe("a", 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 5 {
			b.Publish(context.Background(), event("a"))
		}
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Publish blocked on a slow subscriber")
	}
	n := 0
	for range slow.C {
		n++
	}
	if n != 1 || !errors.Is(slow.Err(), linkevents.ErrSlowConsumer) {
		t.Errorf("slow subscriber: %d events then %v, want 1 then ErrSlowConsumer", n, slow.Err())
	}
	for i := range 5 {
		select {
		case <-fast.C:
		default:
			t.Fatalf("fast subscriber missed event %d", i)
		}
	}
	fast.Cancel()
}

func TestCloseEndsSubscriptions(t *testing.T) {
	b := linkevents.NewLocal()
	s := b.Subscribe("a", 1)
	b.Close()
	if _, open := <-s.C; open || !errors.Is(s.Err(), linkevents.ErrClosed) {
		t.Errorf("after Close: open=%v err=%v, want closed with ErrClosed", open, s.Err())
	}
	late := b.Subscribe("a", 1)
	if _, open := <-late.C; open || !errors.Is(late.Err(), linkevents.ErrClosed) {
		t.Errorf("subscribe after Close: open=%v err=%v", open, late.Err())
	}
	s.Cancel()
}

func TestConcurrentUse(t *testing.T) {
	b := linkevents.NewLocal()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				s := b.Subscribe("a", 2)
				b.Publish(context.Background(), event("a"))
				s.Cancel()
			}
		})
	}
	wg.Wait()
	if links, subs := b.Links(); links != 0 || subs != 0 {
		t.Errorf("Links() = %d, %d; want 0, 0", links, subs)
	}
}
