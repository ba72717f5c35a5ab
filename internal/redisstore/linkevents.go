package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mkgraph/mkgraph/internal/linkevents"
	"github.com/mkgraph/mkgraph/upstream"
)

// OpPubSub is the Config.OnError operation of the link event bus (the
// metrics package's RedisPubSub).
const OpPubSub = "pubsub"

// Bounds of the subscriber loop.
const (
	// pubsubIdle is how long the loop waits for a message before it PINGs
	// the connection, so that a dead connection is noticed while idle.
	pubsubIdle = 5 * time.Second
	// Reconnects after a failure back off from pubsubBackoffMin, doubling,
	// to pubsubBackoffMax.
	pubsubBackoffMin = 100 * time.Millisecond
	pubsubBackoffMax = 5 * time.Second
	// maxPubSubMessage bounds a message read from the channel (anyone with
	// access to Redis can publish on it).
	maxPubSubMessage = 16 << 10
)

// Types of the messages on the channel.
const (
	msgEvent      = "event"
	msgInvalidate = "invalidate"
)

// pubsubMessage is what travels on the channel, as JSON. It holds a link id
// and an event (kinds, states, MoneyKit's error message), never identity
// data; nothing of it is stored in Redis.
type pubsubMessage struct {
	Version int               `json:"v"`
	Origin  string            `json:"o"` // the publishing replica, which ignores its own messages
	Type    string            `json:"t"` // msgEvent or msgInvalidate
	LinkID  string            `json:"l"`
	Event   *linkevents.Event `json:"e,omitempty"`
}

// LinkEvents is the linkevents.Bus of several replicas: Publish delivers to
// this replica's subscribers (its Local) and PUBLISHes the event on one
// Redis channel under the key prefix, on which every replica's background
// SUBSCRIBE loop hands it to its own Local. Subscriptions are local. The
// same channel carries identity cache invalidations (Invalidate), applied on
// the other replicas by the WithInvalidate callback, in order with the
// events: a replica drops its cached answer before its subscribers hear of
// the event that made it stale.
//
// Redis pub/sub delivers at most once: a replica that is disconnected when a
// message is published misses it. When Redis fails, Publish still delivers
// locally (counted as OpPubSub, warned about at most every 10 s) and the
// loop reconnects with backoff until Close.
type LinkEvents struct {
	c            *Client
	local        *linkevents.Local
	channel      string
	origin       string
	onInvalidate func(linkID string)
	onDeliver    func()

	mu     sync.Mutex
	ps     *redis.PubSub // the loop's, closed by Close to end a blocked read
	closed bool
	cancel context.CancelFunc
	done   chan struct{}
	ready  chan struct{} // closed once the first SUBSCRIBE is confirmed
}

var _ linkevents.Bus = (*LinkEvents)(nil)

// LinkEventsOption configures NewLinkEvents.
type LinkEventsOption func(*LinkEvents)

// WithNamespace keeps the channel to the MoneyKit app namespace names
// (cache.NamespaceFor of its credentials): two apps sharing a Redis and a
// prefix do not hear each other's events.
func WithNamespace(namespace string) LinkEventsOption {
	return func(l *LinkEvents) { l.channel = l.c.key("events", l.c.name(namespace)) }
}

// WithInvalidate sets what an invalidation broadcast by another replica
// does here (drop the link's answer from this replica's memory).
func WithInvalidate(f func(linkID string)) LinkEventsOption {
	return func(l *LinkEvents) { l.onInvalidate = f }
}

// WithDeliver sets what is told of each event another replica published,
// after it was handed to the Local (for metrics).
func WithDeliver(f func()) LinkEventsOption {
	return func(l *LinkEvents) { l.onDeliver = f }
}

// NewLinkEvents returns the bus of c delivering to local, and starts its
// SUBSCRIBE loop; Close stops it (local is the caller's to close).
func NewLinkEvents(c *Client, local *linkevents.Local, opts ...LinkEventsOption) *LinkEvents {
	l := &LinkEvents{
		c: c, local: local, channel: c.key("events", "all"), origin: rand.Text(),
		onInvalidate: func(string) {}, onDeliver: func() {},
		done: make(chan struct{}), ready: make(chan struct{}),
	}
	for _, o := range opts {
		o(l)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.loop(ctx)
	return l
}

// Channel returns the Redis channel the replicas share (for tests and
// operators: PUBSUB NUMSUB tells how many replicas listen).
func (l *LinkEvents) Channel() string { return l.channel }

// Ready is closed once the loop's first SUBSCRIBE was confirmed.
func (l *LinkEvents) Ready() <-chan struct{} { return l.ready }

// Publish implements linkevents.Bus: e goes to this replica's subscribers,
// then to the other replicas'. It returns nil when Redis fails (the local
// subscribers have the event; the failure is counted and logged).
func (l *LinkEvents) Publish(ctx context.Context, e linkevents.Event) error {
	l.local.Deliver(e)
	l.publish(ctx, pubsubMessage{Type: msgEvent, LinkID: e.LinkID, Event: &e})
	return nil
}

// Invalidate tells the other replicas to drop linkID's identity answer from
// their memory. An error means Redis failed: they may still serve it (until
// their TTL).
func (l *LinkEvents) Invalidate(ctx context.Context, linkID string) error {
	return l.publish(ctx, pubsubMessage{Type: msgInvalidate, LinkID: linkID})
}

func (l *LinkEvents) publish(ctx context.Context, m pubsubMessage) error {
	m.Version, m.Origin = 1, l.origin
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return l.c.do(ctx, OpPubSub, func(ctx context.Context) error {
		return l.c.rdb.Publish(ctx, l.channel, b).Err()
	})
}

// Subscribe implements linkevents.Bus: subscribers are this replica's.
func (l *LinkEvents) Subscribe(linkID string, buffer int) *linkevents.Subscription {
	return l.local.Subscribe(linkID, buffer)
}

// Close stops the SUBSCRIBE loop and waits for it. It is safe to call more
// than once.
func (l *LinkEvents) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return
	}
	l.closed = true
	l.cancel()
	if l.ps != nil {
		l.ps.Close()
	}
	l.mu.Unlock()
	<-l.done
}

// loop keeps a subscription to the channel until ctx ends, reconnecting with
// backoff after failures.
func (l *LinkEvents) loop(ctx context.Context) {
	defer close(l.done)
	backoff := pubsubBackoffMin
	failing := false
	for ctx.Err() == nil {
		err := l.session(ctx, func() {
			backoff = pubsubBackoffMin
			if failing {
				failing = false
				l.c.log.Info().Str("redis", l.c.addr).Msg("Redis pub/sub subscribed again: link events and cache invalidations reach this replica")
			}
		})
		if ctx.Err() != nil {
			return
		}
		failing = true
		l.c.failed(OpPubSub, err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, pubsubBackoffMax)
	}
}

// session subscribes once and reads messages until an error; subscribed is
// called when the SUBSCRIBE is confirmed.
func (l *LinkEvents) session(ctx context.Context, subscribed func()) error {
	ps := l.c.rdb.Subscribe(ctx)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		ps.Close()
		return errClosedBus
	}
	l.ps = ps
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.ps = nil
		l.mu.Unlock()
		ps.Close()
	}()
	sctx, cancel := context.WithTimeout(ctx, 4*l.c.timeout)
	err := ps.Subscribe(sctx, l.channel)
	cancel()
	if err != nil {
		return err
	}
	for {
		msg, err := ps.ReceiveTimeout(ctx, pubsubIdle)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				// Idle: check that the connection is alive; its PONG comes
				// as a message.
				pctx, cancel := context.WithTimeout(ctx, l.c.timeout)
				err = ps.Ping(pctx)
				cancel()
				if err == nil {
					continue
				}
			}
			return err
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == l.channel {
				subscribed()
				l.markReady()
			}
		case *redis.Message:
			l.handle(m.Payload)
		case *redis.Pong:
		}
	}
}

func (l *LinkEvents) markReady() {
	select {
	case <-l.ready:
	default:
		close(l.ready)
	}
}

// handle applies one message of another replica; malformed ones (not ours:
// anyone who can reach Redis can publish) are dropped.
func (l *LinkEvents) handle(payload string) {
	if len(payload) > maxPubSubMessage {
		return
	}
	var m pubsubMessage
	if json.Unmarshal([]byte(payload), &m) != nil || m.Version != 1 || m.Origin == l.origin {
		return
	}
	if upstream.ValidateLinkID(m.LinkID) != nil {
		return
	}
	switch m.Type {
	case msgInvalidate:
		l.onInvalidate(m.LinkID)
	case msgEvent:
		if m.Event == nil || m.Event.LinkID != m.LinkID {
			return
		}
		l.local.Deliver(*m.Event)
		l.onDeliver()
	}
}

var errClosedBus = errors.New("redisstore: link event bus closed")
