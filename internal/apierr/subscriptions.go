package apierr

// Codes of subscriptions (Subscription.linkEvents over WebSocket or SSE).
const (
	// CodeSubscriptionOverflow ends a subscription whose client did not
	// read its events as fast as they came: its buffer (a few events) was
	// full when another came. The publisher and the other subscribers were
	// not held back; the client may subscribe again (and read the link to
	// catch up).
	CodeSubscriptionOverflow = "facade.subscription_overflow"
	// CodeTooManySubscriptions refuses a subscription over the bounds: too
	// many on one connection, or for one caller over all its connections
	// on this replica. No bus subscription is made.
	CodeTooManySubscriptions = "facade.too_many_subscriptions"
	// CodeSubscriptionsUnavailable refuses a subscription when this server
	// has no event bus (subscriptions are off) or is shutting down.
	CodeSubscriptionsUnavailable = "facade.subscriptions_unavailable"
	// CodeSubscriptionOverHTTP refuses a subscription sent as a plain
	// JSON request (HTTP 400, facade.bad_request): subscriptions need WebSocket
	// (graphql-transport-ws) or Accept: text/event-stream.
	CodeSubscriptionOverHTTP = CodeBadRequest
)
