package webhook

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"

	"github.com/mkgraph/mkgraph/upstream"
)

// errUnknownKID: the kid is not in a JWK Set fetched just now (or within
// RefetchInterval): the delivery is not MoneyKit's.
var errUnknownKID = errors.New("kid not in MoneyKit's JWK Set")

// unavailableError: the keys could not be fetched, so a delivery that may be
// genuine cannot be verified now. reason is a short secret-free text.
type unavailableError struct{ reason string }

func (e *unavailableError) Error() string { return "JWK Set unavailable: " + e.reason }

// keySet is MoneyKit's webhook signing keys, fetched on demand.
type keySet struct {
	url, clientID string
	client        *http.Client
	ttl, interval time.Duration
	now           func() time.Time

	mu          sync.Mutex
	keys        map[string]*ecdsa.PublicKey
	fetchedAt   time.Time     // last successful fetch; zero: none
	failedAt    time.Time     // last failed fetch since then; zero: none
	failReason  string        // why it failed
	lastUnknown time.Time     // last fetch that ended without the kid it was for; zero: none
	fetching    chan struct{} // closed when the fetch under way ends; nil: none
}

func newKeySet(cfg Config) *keySet {
	return &keySet{
		url: cfg.BaseURL + "/.well-known/jwks.json", clientID: cfg.ClientID, client: cfg.HTTPClient,
		ttl: cfg.JWKSTTL, interval: cfg.RefetchInterval, now: cfg.Now,
	}
}

// key returns the key named kid: from the cached set while it is fresh, else
// (or when kid is unknown and no unknown kid caused a fetch within the
// interval) after one fetch. Errors are errUnknownKID or *unavailableError.
func (s *keySet) key(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	for {
		s.mu.Lock()
		now := s.now()
		fresh := !s.fetchedAt.IsZero() && now.Sub(s.fetchedAt) < s.ttl
		if fresh {
			if k, ok := s.keys[kid]; ok {
				s.mu.Unlock()
				return k, nil
			}
		}
		if ch := s.fetching; ch != nil {
			// Someone is fetching: decide on their result.
			s.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, &unavailableError{"the request ended while the JWK Set was fetched"}
			}
		}
		failedLately := !s.failedAt.IsZero() && now.Sub(s.failedAt) < s.interval
		switch {
		case failedLately:
			// MoneyKit's JWKS failed a moment ago: do not ask again yet.
			reason := s.failReason
			s.mu.Unlock()
			return nil, &unavailableError{reason + " (not asked again yet)"}
		case fresh && !s.lastUnknown.IsZero() && now.Sub(s.lastUnknown) < s.interval:
			// An unknown kid caused a fetch a moment ago.
			s.mu.Unlock()
			return nil, errUnknownKID
		}
		ch := make(chan struct{})
		s.fetching = ch
		s.mu.Unlock()

		// The fetch is shared: one caller leaving must not fail it for the
		// others. The client's timeout bounds it.
		keys, err := s.fetch(context.WithoutCancel(ctx))

		s.mu.Lock()
		done := s.now()
		if err != nil {
			s.failedAt, s.failReason = done, err.Error()
		} else {
			s.keys, s.fetchedAt, s.failedAt, s.failReason = keys, done, time.Time{}, ""
		}
		k, ok := keys[kid]
		if err == nil && !ok {
			s.lastUnknown = done
		}
		s.fetching = nil
		close(ch)
		s.mu.Unlock()
		switch {
		case err != nil:
			return nil, err
		case !ok:
			return nil, errUnknownKID
		}
		return k, nil
	}
}

// fetch reads the JWK Set and keeps its EC P-256 signing keys. Its errors
// are *unavailableError with secret-free reasons (never the URL, which may
// hold a password).
func (s *keySet) fetch(ctx context.Context) (map[string]*ecdsa.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, &unavailableError{"bad JWKS URL"}
	}
	req.Header.Set("X-Client-Id", s.clientID)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("MoneyKit-Version", upstream.Version)
	res, err := s.client.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, &unavailableError{"JWKS request timed out"}
		}
		return nil, &unavailableError{"JWKS request failed to connect"}
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		return nil, &unavailableError{fmt.Sprintf("JWKS answered HTTP %d", res.StatusCode)}
	}
	raw, err := io.ReadAll(io.LimitReader(res.Body, MaxJWKSBytes+1))
	switch {
	case err != nil:
		return nil, &unavailableError{"JWKS body could not be read"}
	case len(raw) > MaxJWKSBytes:
		return nil, &unavailableError{fmt.Sprintf("JWKS larger than %d bytes", MaxJWKSBytes)}
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(raw, &set); err != nil || set.Keys == nil {
		return nil, &unavailableError{"JWKS is not a JWK Set"}
	}
	keys := make(map[string]*ecdsa.PublicKey, len(set.Keys))
	for _, m := range set.Keys {
		if k := signingKey(m); k != nil {
			if _, dup := keys[m.KID]; !dup {
				keys[m.KID] = k
			}
		}
	}
	return keys, nil
}

// signingKey returns m's public key when m is an ES256 signing key with a
// kid; nil for any other key (skipped, not an error: the set may hold keys
// for other uses).
func signingKey(m jwkset.JWKMarshal) *ecdsa.PublicKey {
	if m.KID == "" || len(m.KID) > maxKIDLen || m.KTY != jwkset.KtyEC || m.CRV != jwkset.CrvP256 ||
		(m.USE != "" && m.USE != jwkset.UseSig) || (m.ALG != "" && m.ALG != jwkset.AlgES256) {
		return nil
	}
	m.D = "" // a published private part is ignored, never used
	jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		return nil
	}
	k, ok := jwk.Key().(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil
	}
	return k
}
