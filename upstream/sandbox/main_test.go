package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// TestMain fails the run when a test leaves a goroutine behind: a handler
// still hanging or dripping after its client gave up, a connection never
// closed. Tests close their servers and idle connections rather than ignore
// net/http's goroutines.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Wire shapes of the identity answer, with exactly the reference's field
// names: strict decoding into them catches a misspelt fixture field.
type (
	identityResponse struct {
		Accounts []account `json:"accounts"`
		Link     link      `json:"link"`
	}
	account struct {
		AccountID   string   `json:"account_id"`
		AccountType string   `json:"account_type"`
		Name        string   `json:"name"`
		Nickname    *string  `json:"nickname"`
		AccountMask *string  `json:"account_mask"`
		Balances    balances `json:"balances"`
		OriginalID  *string  `json:"original_id"`
		Closed      *bool    `json:"closed"`
		Owners      []owner  `json:"owners"`
	}
	balances struct {
		Currency    *string      `json:"currency"`
		Available   *json.Number `json:"available"`
		Current     *json.Number `json:"current"`
		Limit       *json.Number `json:"limit"`
		BalanceDate *string      `json:"balance_date"`
	}
	owner struct {
		Names        []string  `json:"names"`
		Addresses    []address `json:"addresses"`
		PhoneNumbers []phone   `json:"phone_numbers"`
		Emails       []email   `json:"emails"`
	}
	address struct {
		City       *string `json:"city"`
		Country    *string `json:"country"`
		PostalCode *string `json:"postal_code"`
		Region     *string `json:"region"`
		Street     *string `json:"street"`
		Primary    *bool   `json:"primary"`
	}
	phone struct {
		Number  string `json:"number"`
		Primary *bool  `json:"primary"`
		Type    string `json:"type"`
	}
	email struct {
		Address string `json:"address"`
		Primary *bool  `json:"primary"`
	}
	link struct {
		LinkID            string             `json:"link_id"`
		InstitutionID     string             `json:"institution_id"`
		InstitutionName   string             `json:"institution_name"`
		InstitutionAvatar *string            `json:"institution_avatar"`
		State             string             `json:"state"`
		ErrorCode         *string            `json:"error_code"`
		Provider          string             `json:"provider"`
		LinkTags          []string           `json:"link_tags"`
		Webhook           *string            `json:"webhook"`
		Products          map[string]product `json:"products"`
		AvailableProducts []string           `json:"available_products"`
	}
	product struct {
		RefreshedAt     *string `json:"refreshed_at"`
		LastAttemptedAt *string `json:"last_attempted_at"`
		ErrorCode       *string `json:"error_code"`
		ErrorMessage    *string `json:"error_message"`
		Unavailable     *string `json:"unavailable"`
		LastEnriched    *string `json:"last_enriched"`
	}
	apiError struct {
		ErrorCode        string `json:"error_code"`
		ErrorMessage     string `json:"error_message"`
		DocumentationURL string `json:"documentation_url"`
		LinkErrorCode    string `json:"link_error_code"`
	}
	tokenResponse struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
)

func ptr[T any](v T) *T { return &v }

// start serves a new sandbox for the duration of the test.
func start(t *testing.T, opts sandbox.Options) (*sandbox.Server, string) {
	t.Helper()
	s := sandbox.New(opts)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts.URL
}

// clientHeaders authorizes identity calls with the default credentials.
func clientHeaders() http.Header {
	return http.Header{"X-Client-Id": {sandbox.DefaultClientID}, "X-Client-Secret": {sandbox.DefaultClientSecret}}
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// do sends a request and returns the response with its body read.
func do(t *testing.T, method, rawURL string, header http.Header, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, rawURL, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

func identityURL(base, linkID, query string) string {
	u := base + "/links/" + url.PathEscape(linkID) + "/identity"
	if query != "" {
		u += "?" + query
	}
	return u
}

// getIdentity calls GET /links/{linkID}/identity.
func getIdentity(t *testing.T, base, linkID, query string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	return do(t, http.MethodGet, identityURL(base, linkID, query), header, nil)
}

func postToken(t *testing.T, base string, form url.Values, header http.Header) (*http.Response, []byte) {
	t.Helper()
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for k, v := range header {
		h[k] = v
	}
	return do(t, http.MethodPost, base+"/auth/token", h, strings.NewReader(form.Encode()))
}

func defaultForm() url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {sandbox.DefaultClientID}, "client_secret": {sandbox.DefaultClientSecret}}
}

// mustToken returns a fresh access token from the default credentials.
func mustToken(t *testing.T, base string) string {
	t.Helper()
	res, body := postToken(t, base, defaultForm(), nil)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("POST /auth/token: status %d, body %s", res.StatusCode, body)
	}
	var tok tokenResponse
	mustDecode(t, body, &tok, true)
	return tok.AccessToken
}

func mustDecode(t *testing.T, body []byte, v any, strict bool) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %.300s: %v", body, err)
	}
}

// checkError checks a JSON error answer.
func checkError(t *testing.T, res *http.Response, body []byte, wantStatus int, wantCode string) apiError {
	t.Helper()
	if res.StatusCode != wantStatus {
		t.Errorf("status = %d, want %d (body %s)", res.StatusCode, wantStatus, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var e apiError
	mustDecode(t, body, &e, true)
	if e.ErrorCode != wantCode {
		t.Errorf("error_code = %q, want %q", e.ErrorCode, wantCode)
	}
	if e.ErrorMessage == "" || !strings.HasPrefix(e.DocumentationURL, "https://docs.moneykit.com/") {
		t.Errorf("error body %s lacks a message or documentation_url", body)
	}
	return e
}

// newClient returns an HTTP client with a transport of its own, whose idle
// connections are closed when the test ends. Without keep-alives every call
// has a new connection, so that net/http never retries a call on another
// one after a reset.
func newClient(t *testing.T, timeout time.Duration, keepAlives bool) *http.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = !keepAlives
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

// fetch calls GET /links/{linkID}/identity with c and returns the response
// with its body read, or the error.
func fetch(ctx context.Context, c *http.Client, base, linkID string, header http.Header) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, identityURL(base, linkID, ""), nil)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res, body, err
}

// mustFetch is fetch that fails the test on an error.
func mustFetch(t *testing.T, c *http.Client, base, linkID string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	res, body, err := fetch(t.Context(), c, base, linkID, header)
	if err != nil {
		t.Fatalf("GET identity %q: %v", linkID, err)
	}
	return res, body
}

// realAnswer returns linkID's answer without its fault: a fault set with
// SetFault beats a magic id's, and one of a nanosecond's latency behaves.
func realAnswer(t *testing.T, s *sandbox.Server, c *http.Client, base, linkID string) []byte {
	t.Helper()
	s.SetFault(linkID, sandbox.Fault{Latency: time.Nanosecond}, 1)
	res, body := mustFetch(t, c, base, linkID, clientHeaders())
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET identity %q without its fault: status %d, body %.200s", linkID, res.StatusCode, body)
	}
	return body
}

// checkHTML checks an HTML answer.
func checkHTML(t *testing.T, res *http.Response, body []byte, wantStatus int, wantText string) {
	t.Helper()
	if res.StatusCode != wantStatus || res.Header.Get("Content-Type") != "text/html" ||
		!bytes.Contains(body, []byte("<html")) || !bytes.Contains(body, []byte(wantText)) {
		t.Errorf("status %d, Content-Type %q, body %q; want %d text/html with %q", res.StatusCode, res.Header.Get("Content-Type"), body, wantStatus, wantText)
	}
}

// checkJSON200 checks the status and content type of a 200 JSON answer.
func checkJSON200(t *testing.T, res *http.Response) {
	t.Helper()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("status %d, Content-Type %q, want 200 application/json", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

// checkOversized checks that body is at least size bytes of valid JSON: real
// with a padding string first in its link object. It looks for the padding
// rather than decode it: decoding 16 MiB is slow under the race detector.
func checkOversized(t *testing.T, body, real []byte, size int) {
	t.Helper()
	if len(body) < size {
		t.Errorf("body is %d bytes, want at least %d", len(body), size)
	}
	const field = `"link":{"sandbox_padding":"`
	i := bytes.Index(body, []byte(field))
	if i < 0 {
		t.Fatalf("body %.200q… has no link.sandbox_padding first in link", body)
	}
	start := i + len(field)
	n := bytes.IndexByte(body[start:], '"')
	if n < 0 || bytes.Count(body[start:start+n], []byte("x")) != n {
		t.Fatalf("link.sandbox_padding is not a string of x")
	}
	if n < size-len(real)-100 {
		t.Errorf("link.sandbox_padding is %d bytes, want about %d", n, size-len(real))
	}
	end := start + n + 1 // past the closing quote
	if body[end] == ',' {
		end++
	}
	rest := append(append(bytes.Clone(body[:i]), `"link":{`...), body[end:]...)
	var got, want identityResponse
	mustDecode(t, rest, &got, true)
	mustDecode(t, real, &want, true)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("oversized answer without its padding mismatch (-want +got):\n%s", diff)
	}
}

// checkNoAnswer checks that a call failed with a reset or a closed connection.
func checkNoAnswer(t *testing.T, res *http.Response, err error) {
	t.Helper()
	if res != nil || !(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		t.Errorf("response %v, error %v; want no response and a reset or EOF", res, err)
	}
}

// checkTimeout checks that a call failed with its client's timeout.
func checkTimeout(t *testing.T, res *http.Response, err error) {
	t.Helper()
	var ue *url.Error
	if res != nil || !errors.As(err, &ue) || !ue.Timeout() {
		t.Errorf("response %v, error %v; want no response and a client timeout", res, err)
	}
}
