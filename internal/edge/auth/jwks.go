package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"golang.org/x/time/rate"
)

// How the JWKS URL is kept fresh.
const (
	// jwksRefreshInterval is how often the JWKS URL is fetched again, so
	// that new keys are known before tokens use them and revoked keys go.
	jwksRefreshInterval = time.Hour
	// jwksUnknownKIDEvery limits the fetches a token with an unknown kid
	// causes: a rotated key is picked up at once, but a stream of forged
	// kids cannot make the facade hammer the issuer.
	jwksUnknownKIDEvery = 5 * time.Minute
	// jwksUnknownKIDWait is the longest a request with an unknown kid waits
	// for that limit and the fetch; when the limit would hold it longer, the
	// token is refused at once.
	jwksUnknownKIDWait = 5 * time.Second
	// maxJWKSBytes bounds a JWKS document (real ones are a few KiB).
	maxJWKSBytes = 1 << 20
)

// sigUses are the JWK "use" values a signing key may have: "sig", or none.
var sigUses = []jwkset.USE{jwkset.UseSig, ""}

// newJWKS returns the keyfunc of the JWKS file and URL of cfg (at least one
// is set). The URL is fetched before it returns; its refresh goroutine ends
// with ctx.
func newJWKS(ctx context.Context, cfg Config) (keyfunc.Keyfunc, error) {
	var given jwkset.Storage
	if cfg.JWKSFile != "" {
		var err error
		if given, err = loadJWKSFile(cfg.JWKSFile); err != nil {
			return nil, err
		}
	}
	if cfg.JWKSURL == "" {
		return keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: given, UseWhitelist: sigUses})
	}

	if err := checkJWKSURL(cfg.JWKSURL); err != nil {
		return nil, err
	}
	client := jwksClient(cfg.HTTPClient)
	timeout := client.Timeout
	if timeout <= 0 {
		timeout = DefaultJWKSTimeout
	}
	refresh := cfg.refreshInterval
	if refresh <= 0 {
		refresh = jwksRefreshInterval
	}
	every := cfg.unknownKIDEvery
	if every <= 0 {
		every = jwksUnknownKIDEvery
	}
	failFirst := false // a JWKS URL that cannot be read at start is a configuration error
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
		Client:                    client,
		Given:                     given,
		HTTPTimeout:               timeout,
		NoErrorReturnFirstHTTPReq: &failFirst,
		RateLimitWaitMax:          jwksUnknownKIDWait,
		// keyfunc logs failed refreshes to slog by default; this package
		// never logs, and keeps serving the keys it has.
		RefreshErrorHandlerFunc: func(string) func(context.Context, error) {
			return func(context.Context, error) {}
		},
		RefreshInterval:   refresh,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(every), 1),
	})
	if err != nil {
		return nil, fmt.Errorf("auth: MKGRAPH_JWT_JWKS_URL: %w", err)
	}
	// NewDefaultOverrideCtx takes no "use" filter: wrap its storage in a
	// keyfunc that has one, so that an encryption key never verifies.
	return keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: kf.Storage(), UseWhitelist: sigUses})
}

// checkJWKSURL accepts https URLs, and http ones only to a loopback host
// (local development): keys fetched in clear text could be anyone's.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("auth: MKGRAPH_JWT_JWKS_URL is not an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
	}
	return errors.New("auth: MKGRAPH_JWT_JWKS_URL must be https (http only to a loopback host)")
}

// jwksClient returns c (or a client with DefaultJWKSTimeout) with its answers
// capped at maxJWKSBytes.
func jwksClient(c *http.Client) *http.Client {
	var cc http.Client
	if c != nil {
		cc = *c
	} else {
		cc.Timeout = DefaultJWKSTimeout
	}
	base := cc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cc.Transport = limitTransport{base: base, max: maxJWKSBytes}
	return &cc
}

// limitTransport caps the body of every answer.
type limitTransport struct {
	base http.RoundTripper
	max  int64
}

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	res.Body = &limitBody{ReadCloser: res.Body, left: t.max}
	return res, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach base.
func (t limitTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

var errJWKSTooLarge = fmt.Errorf("JWKS larger than %d bytes", maxJWKSBytes)

// limitBody reads up to left bytes, and fails (rather than truncating
// silently) when there are more.
type limitBody struct {
	io.ReadCloser
	left int64
}

func (b *limitBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errJWKSTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, errJWKSTooLarge
	}
	return n, err
}

// loadJWKSFile reads a JWK Set of public signing keys. Private and
// symmetric keys are refused: this file is for publishing, and a symmetric
// key here would never be used (HS256 takes MKGRAPH_JWT_HS256_SECRET).
func loadJWKSFile(path string) (jwkset.Storage, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: MKGRAPH_JWT_JWKS_FILE: %w", err)
	}
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("auth: MKGRAPH_JWT_JWKS_FILE is not a JWK Set: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("auth: MKGRAPH_JWT_JWKS_FILE holds no keys")
	}
	for i, k := range set.Keys {
		switch {
		case k.KTY == jwkset.KtyOct:
			return nil, fmt.Errorf("auth: MKGRAPH_JWT_JWKS_FILE key %d is symmetric (oct): use MKGRAPH_JWT_HS256_SECRET", i)
		case k.D != "":
			return nil, fmt.Errorf("auth: MKGRAPH_JWT_JWKS_FILE key %d holds private key material: publish only public keys", i)
		}
	}
	store, err := set.ToStorage()
	if err != nil {
		return nil, fmt.Errorf("auth: MKGRAPH_JWT_JWKS_FILE: %w", err)
	}
	return store, nil
}
