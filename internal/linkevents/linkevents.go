// Package linkevents carries MoneyKit's link events (as its verified
// webhooks report them) to the subscribers of a link: in process by
// default (Local), through Redis pub/sub between replicas (an adapter in
// internal/redisstore satisfies Bus). A subscriber has a bounded buffer: a
// consumer too slow to keep up is dropped with ErrSlowConsumer, so a
// publisher never blocks and no subscriber delays another.
package linkevents

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Kinds of event, as the GraphQL enum LinkEventKind names them.
const (
	KindProductRefresh               = "PRODUCT_REFRESH"
	KindStateChanged                 = "STATE_CHANGED"
	KindTransactionsUpdatesAvailable = "TRANSACTIONS_UPDATES_AVAILABLE"
	KindUnknown                      = "UNKNOWN"
)

// Event is one link event. It holds no identity data: the subscriber reads
// the link itself, through its own authorization and the identity cache.
type Event struct {
	LinkID       string    `json:"link_id"`
	Kind         string    `json:"kind"`                    // one of the Kind constants
	Product      string    `json:"product,omitempty"`       // PRODUCT_REFRESH only, MoneyKit's name (e.g. "identity")
	RefreshState string    `json:"refresh_state,omitempty"` // PENDING, IN_PROGRESS, COMPLETED, FAILED, UNKNOWN
	LinkState    string    `json:"link_state,omitempty"`    // STATE_CHANGED only, MoneyKit's value
	ErrorMessage string    `json:"error_message,omitempty"`
	OccurredAt   time.Time `json:"occurred_at"`
}

// ErrSlowConsumer ends a subscription whose buffer was full when an event
// came: the subscriber did not keep up.
var ErrSlowConsumer = errors.New("linkevents: subscriber too slow, events dropped")

// ErrClosed ends the subscriptions of a bus that was closed (shutdown).
var ErrClosed = errors.New("linkevents: closed")

// Subscription is one subscriber's view of a link's events. C is closed
// when the subscription ends; Err then says why (nil after Cancel).
type Subscription struct {
	C      <-chan Event
	cancel func()
	err    func() error
}

// Cancel ends the subscription; it is safe to call more than once.
func (s *Subscription) Cancel() { s.cancel() }

// Err says why C was closed: ErrSlowConsumer, ErrClosed, or nil after Cancel
// or while C is open.
func (s *Subscription) Err() error { return s.err() }

// Bus publishes link events to the subscribers of the link, on every
// replica that shares it.
type Bus interface {
	// Publish delivers e to the subscribers of e.LinkID. It never blocks on
	// a subscriber. An error means other replicas may not have it (the
	// local subscribers have).
	Publish(ctx context.Context, e Event) error
	// Subscribe returns a subscription to linkID's events with a buffer of
	// buffer events (at least 1).
	Subscribe(linkID string, buffer int) *Subscription
}

// Local is the in-process Bus, and the local delivery of any other Bus.
// The zero value is not usable: call NewLocal.
type Local struct {
	mu     sync.Mutex
	subs   map[string]map[*sub]struct{}
	closed bool
}

type sub struct {
	ch     chan Event
	once   sync.Once
	mu     sync.Mutex
	reason error
}

func (s *sub) end(reason error) {
	s.once.Do(func() {
		s.mu.Lock()
		s.reason = reason
		s.mu.Unlock()
		close(s.ch)
	})
}

// NewLocal returns an empty in-process bus.
func NewLocal() *Local { return &Local{subs: map[string]map[*sub]struct{}{}} }

var _ Bus = (*Local)(nil)

// Publish delivers e to this process's subscribers of e.LinkID.
func (l *Local) Publish(_ context.Context, e Event) error {
	l.Deliver(e)
	return nil
}

// Deliver hands e to each local subscriber of its link without blocking: a
// subscriber whose buffer is full is ended with ErrSlowConsumer.
func (l *Local) Deliver(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for s := range l.subs[e.LinkID] {
		select {
		case s.ch <- e:
		default:
			l.remove(e.LinkID, s)
			s.end(ErrSlowConsumer)
		}
	}
}

// Subscribe returns a subscription to linkID's events.
func (l *Local) Subscribe(linkID string, buffer int) *Subscription {
	s := &sub{ch: make(chan Event, max(buffer, 1))}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		s.end(ErrClosed)
	} else {
		if l.subs[linkID] == nil {
			l.subs[linkID] = map[*sub]struct{}{}
		}
		l.subs[linkID][s] = struct{}{}
		l.mu.Unlock()
	}
	return &Subscription{
		C: s.ch,
		cancel: func() {
			l.mu.Lock()
			l.remove(linkID, s)
			l.mu.Unlock()
			s.end(nil)
		},
		err: func() error {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.reason
		},
	}
}

// remove drops s from linkID's subscribers; l.mu must be held.
func (l *Local) remove(linkID string, s *sub) {
	if m := l.subs[linkID]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(l.subs, linkID)
		}
	}
}

// Links returns how many links have subscribers here, and how many
// subscriptions there are in all (for metrics).
func (l *Local) Links() (links, subscriptions int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.subs {
		subscriptions += len(m)
	}
	return len(l.subs), subscriptions
}

// HasSubscribers reports whether linkID has a subscriber in this process.
func (l *Local) HasSubscribers(linkID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.subs[linkID]) > 0
}

// Close ends every subscription with ErrClosed; later subscriptions end at
// once.
func (l *Local) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for id, m := range l.subs {
		for s := range m {
			s.end(ErrClosed)
		}
		delete(l.subs, id)
	}
}
