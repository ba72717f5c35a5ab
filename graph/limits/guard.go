package limits

import (
	"github.com/mkgraph/mkgraph/internal/apierr"
)

// Guard is a Config with the query texts that passed it (passed.go), shared
// by the HTTP Middleware and the checks of operations that arrive another
// way: a WebSocket's subscribe messages reach gqlgen without crossing any
// HTTP middleware, so graph checks them itself, before parsing. It is safe
// for concurrent use.
type Guard struct{ g *guard }

// Guard returns a Guard of c (its zero limits set to their defaults).
func (c Config) Guard() *Guard {
	return &Guard{g: &guard{Config: c.WithDefaults(), passed: newPassed()}}
}

// Check is Config.Check, remembering the texts that pass: a text that
// passed before passes again without being checked.
func (g *Guard) Check(query, operationName string) *apierr.Error {
	return check(g.g, query, operationName)
}

// Checks returns how many query texts g has looked at (remembered or
// checked), by Check and Middleware: what tests count to see that a
// request is looked at once.
func (g *Guard) Checks() int64 { return g.g.checks.Load() }
