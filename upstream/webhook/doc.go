// Package webhook receives MoneyKit's webhooks: it verifies each delivery,
// drops repeated ones, and hands every new verified event to a callback.
//
// # What a delivery must be
//
// MoneyKit POSTs a JSON body with the header MoneyKit-Signature: a JWT
// signed with ES256 (any other alg, "none", HS256 and RS256 included, is
// refused before a key is looked up) whose header kid names a key of
// {BaseURL}/.well-known/jwks.json (fetched with X-Client-Id, no token). Its
// claims must hold iat within MaxAge of now, either way (an old iat is a
// replay, a future one is forged or a broken clock), and
// request_body_sha256, the hex SHA-256 of the raw body, compared in
// constant time. exp and nbf, when present, are honoured with the same
// MaxAge of leeway. The body is at most MaxBodyBytes, a JSON object whose
// webhook_idempotency_key, link_id (upstream.ValidateLinkID) and
// webhook_event are non-empty strings of bounded length, and whose other
// documented fields have their documented types when present.
//
// # Keys
//
// The JWK Set is fetched on first use and kept at most Config.JWKSTTL
// (MKGRAPH_WEBHOOK_JWKS_TTL, DefaultJWKSTTL; MoneyKit allows 24 h). Only
// EC P-256 keys for signing (use "sig" or none, alg "ES256" or none) are
// kept. A kid the cached set does not know causes one refetch, so a
// rotated key is picked up at once; further refetches for unknown kids wait
// Config.RefetchInterval (DefaultRefetchInterval) after the last one, so a
// stream of forged kids costs MoneyKit at most one fetch per interval. A
// fetch that ends without the kid counts as that refetch (so twenty forged
// kids on a cold cache cost one fetch too). A failed fetch is not tried
// again for RefetchInterval either. Concurrent deliveries share one fetch.
//
// # Answers
//
// The receiver answers MoneyKit with a tiny JSON contract of its own (no
// GraphQL envelope):
//
//	200 {"status":"accepted"}                    verified and applied, or a repeated webhook_idempotency_key (applied once)
//	400 {"error_code":"facade.webhook_invalid"}  unverifiable or malformed: forged, replayed, wrong alg, unknown kid after a refetch, hash mismatch, bad JSON
//	413 {"error_code":"facade.webhook_invalid"}  body over MaxBodyBytes (not read past the limit; the same code: the delivery is invalid, only the status says why)
//	405 {"error_code":"facade.webhook_invalid"}  not a POST (Allow: POST)
//	503 {"error_code":"facade.webhook_unavailable"} the delivery may be genuine but could not be handled now: the JWK Set could not be fetched (MoneyKit or its JWKS down), Config.OnEvent failed, the dedupe store failed, or another delivery of the same key is still being applied
//
// A JWKS outage is 503, not 400: the key could not be fetched, so the
// delivery may be genuine and MoneyKit's retry (for up to 2 hours) should
// bring it again. A kid still unknown after a successful refetch is 400.
// Bad input is never a 5xx, so MoneyKit's retries follow real failures only.
//
// Refusals are logged at warn level with their verdict (Verdict…); never
// the body, the signature, the delivery token or a claim.
//
// # Dedupe
//
// A delivery changes nothing until it is verified, the dedupe Store
// included: a forgery carrying a genuine idempotency key does not stop
// MoneyKit's genuine delivery of it. A verified delivery claims its key in
// the Store ("in progress" for ApplyTimeout plus a margin), calls OnEvent,
// then confirms the key for DedupeTTL (DefaultDedupeTTL, more than
// MoneyKit's 2 hours of retries). When OnEvent fails the claim is released
// and the answer is 503, so MoneyKit's retry applies the event. A concurrent
// duplicate waits (at most BusyWait) for the first to finish and is answered
// as it is: 200 once it was applied; if the first failed, the duplicate
// applies it itself. The default Store is in memory, per replica, bounded
// (NewMemoryStore); redisstore.NewWebhookDedupe shares it between replicas.
//
// # Wiring
//
// Done in package main: events.go builds the Handler (its OnEvent drops the
// link's cached identity on every replica, then publishes the event) and
// routes.go mounts it. In outline:
//
//	wh, err := webhook.New(webhook.Config{
//		BaseURL:  s.MoneyKitBaseURL, // the sandbox's URL when embedded: it serves the JWKS and signs with ES256
//		ClientID: s.MoneyKitClientID,
//		JWKSTTL:  s.WebhookJWKSTTL, // MKGRAPH_WEBHOOK_JWKS_TTL, default webhook.DefaultJWKSTTL
//		MaxAge:   s.WebhookMaxAge,  // MKGRAPH_WEBHOOK_MAX_AGE, default webhook.DefaultMaxAge
//		Store:    redisstore.NewWebhookDedupe(rs, cache.NamespaceFor(baseURL, clientID)), // with MKGRAPH_REDIS_URL; nil otherwise
//		Log:      log,
//		OnEvent: func(ctx context.Context, e webhook.Event) error {
//			// ProductRefresh of identity COMPLETED, StateChanged: drop the
//			// link's identity cache entries, then publish to subscribers.
//			return identityCache.Invalidate(ctx, e.LinkID)
//		},
//		OnVerdict: metrics.WebhookVerdict, // mkgraph_webhook_deliveries_total{verdict}
//	})
//
// and in routes.go, outside the GraphQL middleware chain (no end-user
// authentication, CSRF, CORS or GraphQL body limit: the signature is the
// authentication, and the handler bounds its own body), but behind request
// id, access log, recover and security headers:
//
//	mux.Handle("/webhooks/moneykit", wh) // POST only; webhook.Path
//
// The receiver must be reachable by MoneyKit (the link's webhook URL); it
// needs no deadline middleware beyond ApplyTimeout and BusyWait, which
// bound it.
package webhook
