package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mkgraph/mkgraph/upstream/webhook"
)

// OpWebhook is the Config.OnError operation of the webhook dedupe (a
// metrics Redis… constant is to be added with the wiring).
const OpWebhook = "webhook"

// Values of a webhook dedupe key: "p:" + the claiming delivery's token
// while it is applied, webhookDone once it was.
const (
	webhookPending = "p:"
	webhookDone    = "d"
)

// WebhookDedupe is the webhook receiver's Store shared by replicas: a key
// claimed on one replica (SET NX with the "in progress" lease) is Busy on
// the others, and Done everywhere once confirmed (for the dedupe TTL), so
// that MoneyKit's concurrent or repeated deliveries of one event are applied
// once. Redis key names hold an HMAC (Config.NameKey) or SHA-256 of the
// idempotency key, never the key.
//
// When Redis fails it falls back to a webhook.MemoryStore of this replica
// (and confirms there too, so this replica never applies a key twice): a
// repeated delivery reaching another replica during an outage may then be
// applied again, which the receiver's events (cache invalidations) allow.
type WebhookDedupe struct {
	c         *Client
	namespace string
	local     *webhook.MemoryStore
}

var _ webhook.Store = (*WebhookDedupe)(nil)

// NewWebhookDedupe returns the shared dedupe store of the MoneyKit app
// namespace names (cache.NamespaceFor of its credentials), so that two apps
// sharing a Redis do not share keys.
func NewWebhookDedupe(c *Client, namespace string) *WebhookDedupe {
	return &WebhookDedupe{c: c, namespace: namespace, local: webhook.NewMemoryStore(webhook.DefaultMaxKeys, nil)}
}

func (d *WebhookDedupe) redisKey(key string) string {
	return d.c.key("webhook", d.c.name(d.namespace, key))
}

// claimScript: KEYS = the key; ARGV = the pending value, the lease (ms).
// Returns 0 when claimed (or already held by this value, lease renewed), 1
// when done, 2 when held by another delivery.
var claimScript = redis.NewScript(`
if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then return 0 end
local v = redis.call("GET", KEYS[1])
if v == "` + webhookDone + `" then return 1 end
if v == ARGV[1] then
	redis.call("PEXPIRE", KEYS[1], ARGV[2])
	return 0
end
return 2`)

// releaseScript deletes a claim only while it holds this delivery's value:
// never a done key, never another delivery's claim.
var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0`)

// Claim implements webhook.Store.
func (d *WebhookDedupe) Claim(ctx context.Context, key, token string, lease time.Duration) (webhook.ClaimState, error) {
	if d.local.Applied(key) {
		return webhook.Done, nil // applied on this replica: no round trip
	}
	var state webhook.ClaimState
	err := d.c.do(ctx, OpWebhook, func(ctx context.Context) error {
		n, err := claimScript.Run(ctx, d.c.rdb, []string{d.redisKey(key)}, webhookPending+token, lease.Milliseconds()).Int()
		if err != nil {
			return err
		}
		switch n {
		case 0:
			state = webhook.Claimed
		case 1:
			state = webhook.Done
		case 2:
			state = webhook.Busy
		default:
			return errors.New("webhook claim script: unexpected reply")
		}
		return nil
	})
	if err != nil {
		return d.local.Claim(ctx, key, token, lease)
	}
	return state, nil
}

// Confirm implements webhook.Store. It never fails: when Redis does, this
// replica's own record stands.
func (d *WebhookDedupe) Confirm(ctx context.Context, key, token string, ttl time.Duration) error {
	d.local.Confirm(ctx, key, token, ttl)
	d.c.do(ctx, OpWebhook, func(ctx context.Context) error {
		return d.c.rdb.Set(ctx, d.redisKey(key), webhookDone, ttl).Err()
	})
	return nil
}

// Release implements webhook.Store. A release Redis missed ends with the
// claim's lease.
func (d *WebhookDedupe) Release(ctx context.Context, key, token string) error {
	d.local.Release(ctx, key, token)
	d.c.do(ctx, OpWebhook, func(ctx context.Context) error {
		return releaseScript.Run(ctx, d.c.rdb, []string{d.redisKey(key)}, webhookPending+token).Err()
	})
	return nil
}
