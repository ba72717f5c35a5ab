// Package auth decides who is calling and which links they may read.
package auth

import (
	"context"
	"time"

	"github.com/mkgraph/mkgraph/internal/ctxkey"
)

// Kind says what sort of caller a request comes from.
type Kind int

const (
	// KindAnonymous is the caller of every request when auth is switched
	// off (MKGRAPH_AUTH=none): no credential was checked.
	KindAnonymous Kind = iota
	// KindUser is an end user of a web or mobile app, known by a JWT that
	// lists the links they may read.
	KindUser
	// KindBackend is a trusted backend (a BFF), known by an API key or by a
	// JWT with the backend scope; it may read any link.
	KindBackend
)

// String returns "anonymous", "user" or "backend".
func (k Kind) String() string {
	switch k {
	case KindAnonymous:
		return "anonymous"
	case KindUser:
		return "user"
	case KindBackend:
		return "backend"
	}
	return "unknown"
}

// Caller is the authenticated caller of one request.
//
// Build one with Anonymous, NewUser or NewBackend (or get it from
// Authenticator.Authenticate): a Caller literal may read nothing, so that a
// zero Caller fails closed rather than open.
type Caller struct {
	Kind    Kind
	Subject string // JWT sub, or the API key's name; never a secret
	// Expires is when the credential stops being accepted: a JWT's exp
	// plus the clock skew allowed (MKGRAPH_JWT_LEEWAY), as the
	// authenticator reads it; zero for API keys and anonymous callers,
	// which do not expire. A caller past it may read nothing (MayRead),
	// and what it opened (a WebSocket, an SSE stream) ends then.
	Expires time.Time

	links map[string]struct{} // what a user may read
	all   bool                // backends and anonymous callers may read any link
}

// Anonymous returns the caller of a request when auth is switched off: it
// may read any link.
func Anonymous() *Caller {
	return &Caller{Kind: KindAnonymous, all: true}
}

// NewUser returns an end user who may read linkIDs and nothing else.
// Duplicates and empty ids are ignored.
func NewUser(subject string, linkIDs ...string) *Caller {
	links := make(map[string]struct{}, len(linkIDs))
	for _, id := range linkIDs {
		if id != "" {
			links[id] = struct{}{}
		}
	}
	return &Caller{Kind: KindUser, Subject: subject, links: links}
}

// NewBackend returns a trusted backend, named by its API key's name or its
// JWT's sub, that may read any link.
func NewBackend(name string) *Caller {
	return &Caller{Kind: KindBackend, Subject: name, all: true}
}

// MayRead reports whether c may read the link linkID. Users may read only
// the links of their token; backends and anonymous callers may read any. A
// nil Caller may read nothing.
func (c *Caller) MayRead(linkID string) bool {
	if c == nil || c.Expired(time.Now()) {
		return false
	}
	if c.all {
		return true
	}
	_, ok := c.links[linkID]
	return ok
}

// Expired reports whether c's credential has expired at now (never for an
// API key or anonymous caller; always for a nil Caller).
func (c *Caller) Expired(now time.Time) bool {
	if c == nil {
		return true
	}
	return !c.Expires.IsZero() && !now.Before(c.Expires)
}

// ID names c for per-caller rate limits and logs: "user:<sub>",
// "backend:<name>" or "anonymous" (also for a nil Caller). It never holds a
// secret.
func (c *Caller) ID() string {
	if c == nil {
		return "anonymous"
	}
	switch c.Kind {
	case KindUser:
		return "user:" + c.Subject
	case KindBackend:
		return "backend:" + c.Subject
	}
	return "anonymous"
}

// callerKey is the context key of the Caller; unexported so that only this
// package can set it.
var callerKey = ctxkey.New[*Caller]("auth.Caller")

// NewContext returns a copy of ctx that carries c.
func NewContext(ctx context.Context, c *Caller) context.Context { return callerKey.With(ctx, c) }

// FromContext returns the Caller in ctx, or nil when there is none (which
// may read nothing).
func FromContext(ctx context.Context) *Caller { return callerKey.From(ctx) }
