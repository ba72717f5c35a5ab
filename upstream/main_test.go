package upstream_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/testing/clocktest"
	"github.com/mkgraph/mkgraph/upstream"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// TestMain fails the run when a test leaves a goroutine behind: a
// connection that was never closed, a handler still blocked, a token fetch
// still running. Tests close idle connections (newHTTPClient) rather than
// ignore net/http's goroutines.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newHTTPClient returns an http.Client whose idle connections are closed when
// the test ends, so that no connection goroutine outlives it.
func newHTTPClient(tb testing.TB) *http.Client {
	tb.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// MustNewClient returns a client of baseURL with the sandbox credentials and
// a test-scoped HTTP client unless cfg sets them.
func MustNewClient(tb testing.TB, baseURL string, cfg upstream.Config) *upstream.Client {
	tb.Helper()
	cfg.BaseURL = baseURL
	if cfg.ClientID == "" {
		cfg.ClientID = sandbox.DefaultClientID
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = sandbox.DefaultClientSecret
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = newHTTPClient(tb)
	}
	c, err := upstream.New(cfg)
	if err != nil {
		tb.Fatalf("upstream.New(%+v): %v", cfg, err)
	}
	return c
}

// MustSandbox serves a sandbox on a test server for the duration of the test.
func MustSandbox(tb testing.TB, opts sandbox.Options) (*sandbox.Server, *httptest.Server) {
	tb.Helper()
	sb := sandbox.New(opts)
	srv := httptest.NewServer(sb)
	tb.Cleanup(srv.Close)
	return sb, srv
}

// MustAsError returns err as an *apierr.Error or fails the test.
func MustAsError(tb testing.TB, err error) *apierr.Error {
	tb.Helper()
	var e *apierr.Error
	if !errors.As(err, &e) {
		tb.Fatalf("error %v (%T) is not an *apierr.Error", err, err)
	}
	return e
}

// newFakeClock returns a clock for Config.Now and sandbox.Options.Now.
func newFakeClock() *clocktest.Clock {
	return clocktest.New(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
}

// recordedRequest is what the fake upstream saw of one request.
type recordedRequest struct {
	Method      string
	EscapedPath string
	RawPath     string
	RawQuery    string
	Header      http.Header
	PostForm    url.Values // token requests only
}

// fakeOptions configures a fakeUpstream.
type fakeOptions struct {
	// identity answers every request that is not POST /auth/token; n counts
	// them from 1. nil: a minimal 200 identity answer.
	identity func(w http.ResponseWriter, r *http.Request, n int)
	// token answers POST /auth/token; n counts them from 1. nil: 201 with
	// access token "tok-<n>" valid for 3600 s.
	token func(w http.ResponseWriter, r *http.Request, n int)
}

// fakeUpstream is a scripted MoneyKit that records every request.
type fakeUpstream struct {
	*httptest.Server
	opts          fakeOptions
	tokenCalls    atomic.Int32
	identityCalls atomic.Int32

	mu       sync.Mutex
	requests []recordedRequest
}

func newFakeUpstream(tb testing.TB, opts fakeOptions) *fakeUpstream {
	tb.Helper()
	f := &fakeUpstream{opts: opts}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	tb.Cleanup(f.Close)
	return f
}

func (f *fakeUpstream) serve(w http.ResponseWriter, r *http.Request) {
	rec := recordedRequest{
		Method:      r.Method,
		EscapedPath: r.URL.EscapedPath(),
		RawPath:     r.URL.RawPath,
		RawQuery:    r.URL.RawQuery,
		Header:      r.Header.Clone(),
	}
	isToken := r.URL.EscapedPath() == "/auth/token" && r.Method == http.MethodPost
	if isToken {
		if err := r.ParseForm(); err == nil {
			rec.PostForm = r.PostForm
		}
	}
	f.mu.Lock()
	f.requests = append(f.requests, rec)
	f.mu.Unlock()

	if isToken {
		n := int(f.tokenCalls.Add(1))
		if f.opts.token != nil {
			f.opts.token(w, r, n)
			return
		}
		writeJSON(w, http.StatusCreated, fmt.Sprintf(`{"access_token":"tok-%d","token_type":"bearer","expires_in":3600}`, n))
		return
	}
	n := int(f.identityCalls.Add(1))
	if f.opts.identity != nil {
		f.opts.identity(w, r, n)
		return
	}
	writeJSON(w, http.StatusOK, minimalIdentity)
}

// Requests returns a copy of the recorded requests.
func (f *fakeUpstream) Requests() []recordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedRequest(nil), f.requests...)
}

// Counts returns the number of identity and token calls seen.
func (f *fakeUpstream) Counts() (identity, token int) {
	return int(f.identityCalls.Load()), int(f.tokenCalls.Load())
}

const minimalIdentity = `{"accounts":[],"link":{"link_id":"mk_test"}}`

// writeJSON writes a JSON answer with headers given as key, value pairs.
func writeJSON(w http.ResponseWriter, status int, body string, header ...string) {
	w.Header().Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		w.Header().Set(header[i], header[i+1])
	}
	w.WriteHeader(status)
	w.Write([]byte(body))
}

// apiErrorJSON is MoneyKit's error body.
func apiErrorJSON(code, message, docs, linkErrorCode string) string {
	b, err := json.Marshal(map[string]string{
		"error_code": code, "error_message": message, "documentation_url": docs, "link_error_code": linkErrorCode,
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// blockUntilGone holds a request until the client gives up on it.
func blockUntilGone(w http.ResponseWriter, r *http.Request) {
	<-r.Context().Done()
}

var update = flag.Bool("update", false, "rewrite testdata/*.golden files from the current output")

// MustReadFile returns the contents of testdata/name.
func MustReadFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// MustDecodeIdentity decodes body or fails the test.
func MustDecodeIdentity(tb testing.TB, body string) *upstream.Identity {
	tb.Helper()
	id, err := upstream.DecodeIdentity([]byte(body))
	if err != nil {
		tb.Fatalf("DecodeIdentity(%.200q): %v, want nil error", body, err)
	}
	return id
}

// checkGolden compares got with testdata/name, or rewrites the file under -update.
func checkGolden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run go test ./upstream -run %s -update to create it)", err, tb.Name())
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		tb.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// accountJSON wraps one account (as JSON) into a minimal identity answer.
func accountJSON(account string) string {
	return `{"accounts":[` + account + `],"link":{"link_id":"mk_test"}}`
}

// balancesJSON wraps balances (as JSON) into a minimal identity answer.
func balancesJSON(balances string) string {
	return accountJSON(`{"account_id":"acc_1","account_type":"depository.checking","name":"Checking","balances":` + balances + `,"owners":[]}`)
}

// productJSON wraps one product status (as JSON) into a minimal identity answer.
func productJSON(status string) string {
	return `{"accounts":[],"link":{"link_id":"mk_test","products":{"identity":` + status + `}}}`
}

// The facade's fixed messages: safe to show, the same whatever went wrong.
const (
	msgUnavailable = "The MoneyKit API is unavailable; try again later."
	msgTimeout     = "The MoneyKit API did not answer in time; try again later."
	msgBadResponse = "The MoneyKit API sent a response the facade cannot read."
)

// MoneyKit documentation pages its error answers point to.
const (
	docsAuth       = "https://docs.moneykit.com/api/reference/authentication"
	docsLinkErrors = "https://docs.moneykit.com/api/reference/link-errors"
	docsRateLimits = "https://docs.moneykit.com/api/reference/rate-limits"
)

// errorFields is the comparable part of an *apierr.Error (Err is for logs).
func errorFields(e *apierr.Error) apierr.Error {
	c := *e
	c.Err = nil
	return c
}
