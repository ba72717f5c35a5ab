package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

// authorizedGet GETs path with a bearer token and decodes the answer,
// retrying as retryDelay allows within the retry budget. The breaker sees
// the outcome of the whole call, retries included: one unlucky link does
// not count three times.
func (c *Client) authorizedGet(ctx context.Context, endpoint, linkID, path string, decode func([]byte) error) error {
	c.budget.deposit()
	return c.throughBreaker(func() error {
		for attempt := 0; ; attempt++ {
			err := c.attempt(ctx, endpoint, linkID, path, decode)
			if err == nil {
				return nil
			}
			wait, retry := c.retryDelay(ctx, attempt, err)
			if !retry || !c.budget.withdraw() || !sleepCtx(ctx, wait) {
				return err
			}
		}
	})
}

// attempt is one try of a GET: an in-flight slot, the rate budget, a token,
// the exchange, and one renewal of the token if the upstream says it expired.
func (c *Client) attempt(ctx context.Context, endpoint, linkID, path string, decode func([]byte) error) error {
	release, err := c.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	return c.withToken(ctx, func(tok string) error {
		// Every identity call counts against MoneyKit's limits, the
		// retry after a renewal too.
		if err := c.reserve(ctx, linkID); err != nil {
			return err
		}
		return c.do(ctx, endpoint, http.MethodGet, path, nil, c.authHeaders(tok, nil), decode)
	})
}

// withToken runs call with a bearer token, and once more with a new token
// when the upstream says the first one expired. A refusal of the
// credentials is remembered for Ready.
func (c *Client) withToken(ctx context.Context, call func(tok string) error) error {
	for renewed := false; ; renewed = true {
		tok, err := c.tokens.Token(ctx)
		if err != nil {
			return fmt.Errorf("%w: %w", errNoRetry, err) // retries are for GETs, not the token POST
		}
		err = call(tok)
		var e *apierr.Error
		switch {
		case !errors.As(err, &e):
		case !renewed && e.Code == apierr.CodeExpiredAccessToken:
			c.tokens.Invalidate(tok)
			continue
		case e.Code == apierr.CodeUnauthorized:
			c.tokens.MarkRefused(err)
		}
		return err
	}
}

// authHeaders returns the header setter of an authorized call with tok,
// which also calls more, when set.
func (c *Client) authHeaders(tok string, more func(http.Header)) func(http.Header) {
	return func(h http.Header) {
		h.Set("Authorization", "Bearer "+tok)
		h.Set("X-Client-Id", c.cfg.ClientID)
		h.Set("X-Client-Secret", c.cfg.ClientSecret)
		if more != nil {
			more(h)
		}
	}
}

// do makes one HTTP exchange and hands the body of a 2xx JSON answer to
// decode; a decode error is facade.upstream_bad_response. It returns an
// *apierr.Error, and is the only place that reads upstream responses, so that the
// Observer sees each exchange's final outcome.
func (c *Client) do(ctx context.Context, endpoint, method, path string, body io.Reader, setHeaders func(http.Header), decode func([]byte) error) (err error) {
	start := time.Now()
	status := 0
	defer func() {
		if c.cfg.Observer != nil {
			call := Call{Endpoint: endpoint, Status: status, Duration: time.Since(start)}
			if err != nil {
				call.Code = apierr.AsError(err).Code
			}
			c.cfg.Observer(ctx, call)
		}
	}()

	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, method, c.base+path, body)
	if err != nil {
		return apierr.New(apierr.CodeInternal, 0, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("MoneyKit-Version", Version)
	req.Header.Set("User-Agent", "mkgraph")
	setHeaders(req.Header)

	resp, err := c.http.Do(req)
	if err != nil {
		return transportError(ctx, actx, err)
	}
	defer resp.Body.Close()
	status = resp.StatusCode

	if resp.ContentLength > c.cfg.MaxBodyBytes {
		return apierr.New(apierr.CodeUpstreamBadResponse, status, fmt.Errorf("body of %d bytes is larger than %d", resp.ContentLength, c.cfg.MaxBodyBytes))
	}
	data, err := readBody(io.LimitReader(resp.Body, c.cfg.MaxBodyBytes+1), resp.ContentLength, c.cfg.MaxBodyBytes)
	// The answer's bytes are only read (every decoder copies what it
	// keeps), so its buffer is reused once the exchange is over.
	defer putBody(data)
	if err != nil {
		if e := transportError(ctx, actx, err); e.Code == apierr.CodeUpstreamTimeout {
			return e
		}
		return apierr.New(apierr.CodeUpstreamBadResponse, status, fmt.Errorf("read body: %w", err))
	}
	if int64(len(data)) > c.cfg.MaxBodyBytes {
		return apierr.New(apierr.CodeUpstreamBadResponse, status, fmt.Errorf("body larger than %d bytes", c.cfg.MaxBodyBytes))
	}
	if status < 200 || status > 299 {
		return responseError(status, resp.Header, data, c.cfg.Now())
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return apierr.New(apierr.CodeUpstreamBadResponse, status, fmt.Errorf("content type %.60q is not JSON", ct))
	}
	if err := decode(data); err != nil {
		return apierr.New(apierr.CodeUpstreamBadResponse, status, err)
	}
	return nil
}

// transportError classifies a failure to get an answer: a deadline (the
// caller's or the per-attempt one) or a network timeout is
// facade.upstream_timeout; anything else (refused, reset, DNS) is
// facade.upstream_unavailable.
func transportError(ctx, actx context.Context, err error) *apierr.Error {
	// *url.Error quotes the request URL, which holds the link id: keep only
	// the cause, for logs.
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case ctx.Err() != nil:
		return apierr.New(apierr.CodeUpstreamTimeout, 0, fmt.Errorf("%w: %w", errCallerGone, context.Cause(ctx)))
	case actx.Err() != nil, errors.As(err, &ne) && ne.Timeout():
		return apierr.New(apierr.CodeUpstreamTimeout, 0, err)
	default:
		return apierr.New(apierr.CodeUpstreamUnavailable, 0, err)
	}
}

// readBody is io.ReadAll sized from the answer's Content-Length when it
// has one (at most limit): io.ReadAll starts at 512 bytes and grows the
// buffer several times for an identity answer of a few kilobytes.
func readBody(r io.Reader, size, limit int64) ([]byte, error) {
	if size <= 0 || size > limit {
		size = 512
	}
	b := getBody(int(size) + 1) // +1: room to read EOF without growing
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow as append does
		}
	}
}

// bodies are answer buffers, reused: an identity answer is a few kilobytes
// read on every uncached request. Buffers grown past maxPooledBody are left
// to the collector.
var bodies sync.Pool

const maxPooledBody = 256 << 10

func getBody(size int) []byte {
	if p, ok := bodies.Get().(*[]byte); ok && cap(*p) >= size {
		return (*p)[:0]
	}
	return make([]byte, 0, size)
}

func putBody(b []byte) {
	if cap(b) > 0 && cap(b) <= maxPooledBody {
		b = b[:0]
		bodies.Put(&b)
	}
}
