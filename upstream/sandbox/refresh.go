package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Defaults of the refresh settings in Options.
const (
	// DefaultRefreshInterval is how soon a product of a link may be
	// refreshed again when Options.RefreshInterval is 0. MoneyKit allows
	// identity once per link per day; the sandbox allows it twice a minute,
	// so that a person can try a refresh, and its 429, in one sitting.
	DefaultRefreshInterval = 30 * time.Second
	// DefaultRefreshDelay is how long a refresh takes when
	// Options.RefreshDelay is 0.
	DefaultRefreshDelay = 2 * time.Second
)

// refreshProducts are the product names POST /links/{id}/products accepts.
var refreshProducts = []string{"accounts", "account_numbers", "identity", "transactions", "investments", "enrichment"}

// maxRefreshBody bounds the body of POST /links/{id}/products and POST
// /webhooks/test/link/{id}.
const maxRefreshBody = 64 << 10

// linkState is what refreshes changed of one link: its answer, decoded so
// that it can change, and the moments products were last asked for. Guarded
// by the Server's mu.
type linkState struct {
	doc       map[string]any // the identity answer, numbers as json.Number: digits kept
	fixture   *fixture       // doc, rendered
	requested map[string]time.Time
	refreshes int // completed identity refreshes
}

// refreshable reports whether linkID has data a refresh can change, or else
// the answer a refresh of it gets: a magic error id's canned failure, or 404.
func refreshable(linkID string) (bool, reply) {
	l, ok := knownLinks()[linkID]
	switch {
	case !ok && strings.HasPrefix(linkID, LinkCopyPrefix):
		return true, reply{}
	case !ok:
		return false, errLinkNotFound
	case l.fixture == nil:
		return false, l.failure
	}
	return true, reply{}
}

// stateLocked returns linkID's state, made from its fixture on first use;
// s.mu is held and linkID is refreshable.
func (s *Server) stateLocked(linkID string) *linkState {
	if st, ok := s.links[linkID]; ok {
		return st
	}
	var body []byte
	if l, ok := knownLinks()[linkID]; ok {
		body = l.fixture.full
	} else {
		body = knownLinks()[LinkHousehold].fixture.copyAs(linkID, nil)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		panic(fmt.Sprintf("sandbox: fixture %s: %v", linkID, err)) // checked by loadFixture
	}
	st := &linkState{doc: doc, requested: make(map[string]time.Time)}
	st.render(linkID)
	s.links[linkID] = st
	return st
}

// render makes st.fixture from st.doc.
func (st *linkState) render(linkID string) {
	body := mustJSON(st.doc)
	f, err := loadFixture(linkID, func() ([]byte, error) { return body, nil })
	if err != nil {
		panic(err)
	}
	st.fixture = f
}

// link returns the link object of st.doc, adding one if missing.
func (st *linkState) link() map[string]any {
	l, ok := st.doc["link"].(map[string]any)
	if !ok {
		l = make(map[string]any)
		st.doc["link"] = l
	}
	return l
}

// product returns the status object of product, adding one if missing.
func (st *linkState) product(name string) map[string]any {
	l := st.link()
	ps, ok := l["products"].(map[string]any)
	if !ok {
		ps = make(map[string]any)
		l["products"] = ps
	}
	p, ok := ps[name].(map[string]any)
	if !ok {
		p = map[string]any{"refreshed_at": nil, "last_attempted_at": nil, "error_code": nil, "error_message": nil, "unavailable": nil}
		ps[name] = p
	}
	return p
}

// linkTags returns the link's link_tags, never nil.
func (st *linkState) linkTags() []string {
	tags := []string{}
	raw, _ := st.link()["link_tags"].([]any)
	for _, t := range raw {
		if s, ok := t.(string); ok {
			tags = append(tags, s)
		}
	}
	return tags
}

// addEmail adds address to the first owner of every account (an owner of
// its own when an account has none): the change a refresh makes visible.
func (st *linkState) addEmail(address string) {
	accounts, _ := st.doc["accounts"].([]any)
	email := map[string]any{"address": address, "primary": false}
	for _, a := range accounts {
		acc, ok := a.(map[string]any)
		if !ok {
			continue
		}
		owners, _ := acc["owners"].([]any)
		if len(owners) == 0 {
			acc["owners"] = []any{map[string]any{"names": []any{}, "addresses": []any{}, "phone_numbers": []any{}, "emails": []any{email}}}
			continue
		}
		if o, ok := owners[0].(map[string]any); ok {
			emails, _ := o["emails"].([]any)
			o["emails"] = append(emails, email)
		}
	}
}

// parseTime reads a fixture timestamp (zone optional: UTC), or the zero time.
func parseTime(v any) time.Time {
	s, _ := v.(string)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// identityReply is linkID's identity answer: as refreshes left it, else its
// fixture's.
func (s *Server) identityReply(linkID string, query url.Values) reply {
	s.mu.Lock()
	st, ok := s.links[linkID]
	var f *fixture
	if ok {
		f = st.fixture
	}
	s.mu.Unlock()
	if f == nil {
		return fixtureReply(linkID, query)
	}
	if ids, ok := query["account_ids"]; ok {
		return jsonReply(http.StatusOK, f.render(ids))
	}
	return jsonReply(http.StatusOK, f.full)
}

// refreshRequest is the body of POST /links/{id}/products.
type refreshRequest struct {
	Products []string `json:"products"`
}

// parseRefresh reads and checks the products of a refresh request.
func parseRefresh(r *http.Request) ([]string, *reply) {
	var req refreshRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	if len(req.Products) == 0 {
		return nil, badRequest("products must list at least one product.")
	}
	var products []string
	for _, p := range req.Products {
		if !slices.Contains(refreshProducts, p) {
			return nil, badRequest("Unknown product " + mustJSONString(p) + ": products are " + strings.Join(refreshProducts, ", ") + ".")
		}
		if !slices.Contains(products, p) {
			products = append(products, p)
		}
	}
	return products, nil
}

// decodeBody reads r's JSON body into v: one object, at most
// maxRefreshBody bytes.
func decodeBody(r *http.Request, v any) *reply {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRefreshBody+1))
	switch {
	case err != nil:
		return badRequest("The request body could not be read.")
	case len(body) > maxRefreshBody:
		return badRequest("The request body is too large.")
	case !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")):
		return badRequest("The request body must be a JSON object.")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("The request body is not valid: " + err.Error())
	}
	return nil
}

// badRequest is a 400 answer with message.
func badRequest(message string) *reply {
	rp := apiError{"api_error.bad_request", message, docsErrors, ""}.reply(http.StatusBadRequest)
	return &rp
}

// mustJSONString quotes s as JSON, for messages.
func mustJSONString(s string) string { return string(mustJSON(s)) }

// serveRefresh answers POST /links/{id}/products: 202 with the link, after
// which the refresh completes in the background (completeRefresh), or 429
// when a product was asked for within the refresh interval.
func (s *Server) serveRefresh(w http.ResponseWriter, r *http.Request, linkID string) {
	s.mu.Lock()
	s.refreshCalls++
	s.refreshByLink[linkID]++
	s.mu.Unlock()

	if !s.admitLinkPost(w, r, linkID) {
		return
	}
	products, failure := parseRefresh(r)
	if failure != nil {
		failure.write(w)
		return
	}

	now := s.now() // outside the lock: Options.Now is the caller's code
	s.mu.Lock()
	st := s.stateLocked(linkID)
	if s.refreshInterval > 0 {
		var wait time.Duration
		for _, p := range products {
			if last, ok := st.requested[p]; ok {
				wait = max(wait, last.Add(s.refreshInterval).Sub(now))
			}
		}
		if wait > 0 {
			s.mu.Unlock()
			// Whole seconds, rounded up: never earlier than allowed.
			rateLimited(fmt.Sprint(int64((wait + time.Second - 1) / time.Second))).write(w)
			return
		}
	}
	for _, p := range products {
		st.requested[p] = now
		st.product(p)["last_attempted_at"] = formatTime(now)
	}
	st.render(linkID)
	body := mustJSON(st.link())
	tags := st.linkTags()
	s.mu.Unlock()

	jsonReply(http.StatusAccepted, body).write(w)

	for _, p := range products {
		s.sendWebhook(productRefreshWebhook(linkID, tags, p, "pending", now))
	}
	s.afterFunc(s.refreshDelay, func() { s.completeRefresh(linkID, products) })
}

// completeRefresh ends a refresh of linkID's products: each gets a new
// refreshed_at, later than its last, and no error; an identity refresh also
// adds an owner email refreshed-N@example.com, N counting the link's
// identity refreshes. A completed webhook follows for each product.
func (s *Server) completeRefresh(linkID string, products []string) {
	now := s.now()
	s.mu.Lock()
	st := s.stateLocked(linkID)
	changed := make([]time.Time, len(products))
	for i, name := range products {
		p := st.product(name)
		t := now
		if prev := parseTime(p["refreshed_at"]); !t.After(prev) {
			t = prev.Add(time.Second) // a fixture from the future: still later
		}
		p["refreshed_at"], p["last_attempted_at"] = formatTime(t), formatTime(t)
		p["error_code"], p["error_message"] = nil, nil
		changed[i] = t
		if name == "identity" {
			st.refreshes++
			st.addEmail(fmt.Sprintf("refreshed-%d@example.com", st.refreshes))
		}
	}
	st.render(linkID)
	tags := st.linkTags()
	s.mu.Unlock()
	for i, p := range products {
		s.sendWebhook(productRefreshWebhook(linkID, tags, p, "completed", changed[i]))
	}
}

// IdentityRefreshes returns how many identity refreshes of linkID have
// completed: the N of the latest refreshed-N@example.com in its answer. It is
// a test hook.
func (s *Server) IdentityRefreshes(linkID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.links[linkID]; ok {
		return st.refreshes
	}
	return 0
}

// RefreshCalls returns how many POST /links/{id}/products calls the server
// has seen, for all link ids and whatever their answer, since New or Reset.
// It is a test hook.
func (s *Server) RefreshCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshCalls
}

// RefreshCallsFor returns how many POST /links/{id}/products calls the
// server has seen for linkID since New or Reset. It is a test hook.
func (s *Server) RefreshCallsFor(linkID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshByLink[linkID]
}

// admitLinkPost answers, and returns false for, what the link's POST routes
// refuse before reading the body: another method, bad credentials, a link
// that cannot be refreshed.
func (s *Server) admitLinkPost(w http.ResponseWriter, r *http.Request, linkID string) bool {
	if r.Method != http.MethodPost {
		errPostMethod.write(w)
		return false
	}
	if failure := s.authorize(r); failure != nil {
		failure.write(w)
		return false
	}
	if ok, failure := refreshable(linkID); !ok {
		failure.write(w)
		return false
	}
	return true
}
