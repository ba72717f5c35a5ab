package auth

import (
	"context"
	"net/http"
)

// AuthenticateHeaders authenticates credentials given as header values
// outside an HTTP request, exactly as Middleware does a request's: a
// WebSocket's connection_init payload (Authorization, or the API key header)
// carries them. ctx is that of the connection (JWKS fetches use it). The
// error is an *apierr.Error with code facade.unauthenticated, as for
// Authenticate.
func (a *Authenticator) AuthenticateHeaders(ctx context.Context, h http.Header) (*Caller, error) {
	r := (&http.Request{Header: h}).WithContext(ctx)
	c, e := a.authenticate(r)
	if e != nil {
		return nil, e
	}
	return c, nil
}

// KeyHeader is the header of API keys (Config.APIKeyHeader, canonical).
func (a *Authenticator) KeyHeader() string { return a.keyHeader }
