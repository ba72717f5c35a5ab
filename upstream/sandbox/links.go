package sandbox

import (
	"bytes"
	"cmp"
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Link ids with fixtures.
const (
	LinkSeed          = "mk_eqkWN34UEoa2NxyALG8pcV" // LinkSeed is the documentation's example link.
	LinkHousehold     = "mk_sandbox_household"      // LinkHousehold has a joint checking account with two owners, savings and a credit card (liability).
	LinkSparse        = "mk_sandbox_sparse"         // LinkSparse is at an institution that provides almost no owner fields.
	LinkInternational = "mk_sandbox_international"  // LinkInternational has non-ASCII names and addresses, non-USD currencies and high-precision amounts.
	LinkNovel         = "mk_sandbox_novel"          // LinkNovel has upstream values the facade does not know: a new link state, a new product key, unknown fields.
	LinkLarge         = "mk_sandbox_large"          // LinkLarge has 500 accounts, for scale.
)

// Magic link ids that produce upstream errors.
const (
	LinkUnauthorized = "mk_sandbox_error_401" // LinkUnauthorized answers 401 link_error.unauthorized_access.
	LinkForbidden    = "mk_sandbox_error_403" // LinkForbidden answers 403 link_error.forbidden_action.
	LinkDeleted      = "mk_sandbox_error_410" // LinkDeleted answers 410 link_error.deleted.
	LinkBadState     = "mk_sandbox_error_422" // LinkBadState answers 422 link_error.bad_state with link_error_code "auth_expired".
	LinkRateLimited  = "mk_sandbox_error_429" // LinkRateLimited answers 429 api_error.rate_limit_exceeded with Retry-After: 30.
	LinkServerError  = "mk_sandbox_error_500" // LinkServerError answers 500 api_error.internal.
	LinkUnavailable  = "mk_sandbox_error_503" // LinkUnavailable answers 503 with an HTML body, as a gateway would.
)

// Magic link ids that misbehave through a built-in Fault, as a network, a
// proxy or an overloaded API would. Those that answer at all answer
// LinkSeed's data under their own link_id, or a failure in its place.
const (
	LinkFault502         = "mk_sandbox_fault_502"       // LinkFault502 answers 502 with an HTML page, as a proxy whose upstream failed would.
	LinkFault504         = "mk_sandbox_fault_504"       // LinkFault504 answers 504 with an HTML page, as a gateway that timed out would.
	LinkFaultHTML        = "mk_sandbox_fault_html"      // LinkFaultHTML answers 200 with an HTML page, as a captive portal would.
	LinkFaultTruncated   = "mk_sandbox_fault_truncated" // LinkFaultTruncated answers 200 application/json with the answer cut at half its length.
	LinkFaultOversized   = "mk_sandbox_fault_oversized" // LinkFaultOversized answers 200 with a valid answer padded to 16 MiB.
	LinkFaultDrip        = "mk_sandbox_fault_drip"      // LinkFaultDrip answers 200 with the answer dripping in 16-byte chunks over about 30 s.
	LinkFaultReset       = "mk_sandbox_fault_reset"     // LinkFaultReset gives no answer: it resets the connection.
	LinkFaultHang        = "mk_sandbox_fault_hang"      // LinkFaultHang gives no answer: it holds the call until the client gives up.
	LinkFaultSlow        = "mk_sandbox_fault_slow"      // LinkFaultSlow answers normally after 5 s.
	LinkRateLimitedDate  = "mk_sandbox_error_429_date"  // LinkRateLimitedDate answers 429 api_error.rate_limit_exceeded with a Retry-After HTTP-date 20 s after Options.Now.
	LinkRateLimitedShort = "mk_sandbox_error_429_short" // LinkRateLimitedShort answers 429 api_error.rate_limit_exceeded with Retry-After: 1.
)

// Sizes and durations of the magic fault ids.
const (
	oversizedBytes = 16 << 20
	dripTotal      = 30 * time.Second
	slowLatency    = 5 * time.Second
	retryAfterDate = 20 * time.Second
)

// LinkCopyPrefix starts a family of link ids: any id with this prefix (e.g.
// "mk_sandbox_copy_42") answers LinkHousehold's data under its own link_id,
// so tests and load runs can have as many distinct links as they need.
const LinkCopyPrefix = "mk_sandbox_copy_"

// LinkInfo describes a link id the sandbox knows.
type LinkInfo struct {
	ID          string // the {id} to request
	Description string // what the link exercises
	// Status is the HTTP status of its identity answer, or 0 when there is
	// none: LinkFaultReset resets the connection and LinkFaultHang holds the
	// call until the client gives up.
	Status int
	// Fault is true for the magic fault ids, which answer through a built-in
	// Fault: slowly, hugely, malformed or not at all for some of them, so a
	// test that expects a prompt, well-formed answer from every link should
	// leave them out.
	Fault bool
}

// Links returns every fixture and magic link id, in the order of the constants above, for docs and tests.
func Links() []LinkInfo {
	infos := make([]LinkInfo, len(links))
	for i, l := range links {
		status := cmp.Or(l.failure.status, http.StatusOK)
		if l.fault != nil {
			status = l.fault.status()
		}
		infos[i] = LinkInfo{ID: l.id, Description: l.description, Status: status, Fault: l.fault != nil}
	}
	return infos
}

const (
	docsAuth       = "https://docs.moneykit.com/api/reference/authentication"
	docsLinkErrors = "https://docs.moneykit.com/api/reference/link-errors"
	docsRateLimits = "https://docs.moneykit.com/api/reference/rate-limits"
	docsErrors     = "https://docs.moneykit.com/api/reference/errors"
)

// link is a known link id and how it answers: from a fixture, or with a
// canned failure; a magic fault id has both a fixture and a built-in Fault.
type link struct {
	id, description string
	source          func() ([]byte, error) // the 200 response JSON; nil for magic error ids
	failure         reply                  // the answer of a magic error id
	fixture         *fixture               // source, parsed once by knownLinks

	fault *Fault // the built-in fault of a magic fault id
	// Fault fields that depend on the moment or on the answer: Retry-After
	// is the HTTP-date retryAfterIn after Options.Now; Drip spreads the
	// whole answer over dripOver.
	retryAfterIn, dripOver time.Duration
}

var links = []link{
	{id: LinkSeed, description: "The documentation's example: one closed checking account with one owner.", source: fixtureFile("seed.json")},
	{id: LinkHousehold, description: "Joint checking with two owners, savings, and a credit card whose current balance is the amount owed.", source: fixtureFile("household.json")},
	{id: LinkSparse, description: "An institution that provides almost no owner fields, balances with only current, timestamps without a zone.", source: fixtureFile("sparse.json")},
	{id: LinkInternational, description: "Non-ASCII names and addresses, EUR and JPY, amounts such as 12345678901234567.89 and 0.10.", source: fixtureFile("international.json")},
	{id: LinkNovel, description: "Values the facade does not know: link state reconnecting, product liabilities, phone type fax, extra fields.", source: fixtureFile("novel.json")},
	{id: LinkLarge, description: "500 generated accounts, for scale.", source: largeFixture},
	{id: LinkUnauthorized, description: "401 link_error.unauthorized_access.",
		failure: apiError{"link_error.unauthorized_access", "Unauthorized link access.", docsLinkErrors, ""}.reply(http.StatusUnauthorized)},
	{id: LinkForbidden, description: "403 link_error.forbidden_action: the user did not permission this data.",
		failure: apiError{"link_error.forbidden_action", "Accounts access not permitted", docsLinkErrors, ""}.reply(http.StatusForbidden)},
	{id: LinkDeleted, description: "410 link_error.deleted.",
		failure: apiError{"link_error.deleted", "This link was deleted at some earlier time.", docsLinkErrors, ""}.reply(http.StatusGone)},
	{id: LinkBadState, description: "422 link_error.bad_state with link_error_code auth_expired.",
		failure: apiError{"link_error.bad_state", "The link is in a bad state; the user must reconnect it.", docsLinkErrors, "auth_expired"}.reply(http.StatusUnprocessableEntity)},
	{id: LinkRateLimited, description: "429 api_error.rate_limit_exceeded with Retry-After: 30.", failure: rateLimited("30")},
	{id: LinkServerError, description: "500 api_error.internal with a JSON body.", failure: errInternal.reply(http.StatusInternalServerError)},
	{id: LinkUnavailable, description: "503 with an HTML body, as from a gateway in front of the API.", failure: gatewayPage(http.StatusServiceUnavailable)},

	// Magic fault ids answer LinkSeed's data under their own id when they let it through.
	{id: LinkFault502, description: "502 with an HTML page, as from a proxy whose upstream failed.",
		source: seedAs(LinkFault502), fault: &Fault{Status: http.StatusBadGateway}},
	{id: LinkFault504, description: "504 with an HTML page, as from a gateway that timed out.",
		source: seedAs(LinkFault504), fault: &Fault{Status: http.StatusGatewayTimeout}},
	{id: LinkFaultHTML, description: "200 text/html: a captive portal's page instead of JSON.",
		source: seedAs(LinkFaultHTML), fault: &Fault{HTML: true}},
	{id: LinkFaultTruncated, description: "200 application/json: the seed answer cut at half its length.",
		source: seedAs(LinkFaultTruncated), fault: &Fault{Truncate: true}},
	{id: LinkFaultOversized, description: "200 application/json: the seed answer padded to 16 MiB by an unknown string field in link.",
		source: seedAs(LinkFaultOversized), fault: &Fault{Oversize: oversizedBytes}},
	{id: LinkFaultDrip, description: "200 application/json: the seed answer dripping in 16-byte chunks over about 30 s.",
		source: seedAs(LinkFaultDrip), fault: &Fault{}, dripOver: dripTotal},
	{id: LinkFaultReset, description: "No answer (status 0): the TCP connection is reset.",
		source: seedAs(LinkFaultReset), fault: &Fault{Reset: true}},
	{id: LinkFaultHang, description: "No answer (status 0): the call hangs until the client gives up.",
		source: seedAs(LinkFaultHang), fault: &Fault{Hang: true}},
	{id: LinkFaultSlow, description: "The seed answer, after 5 s.",
		source: seedAs(LinkFaultSlow), fault: &Fault{Latency: slowLatency}},
	{id: LinkRateLimitedDate, description: "429 api_error.rate_limit_exceeded with Retry-After an HTTP-date 20 s ahead.",
		source: seedAs(LinkRateLimitedDate), fault: &Fault{Status: http.StatusTooManyRequests}, retryAfterIn: retryAfterDate},
	{id: LinkRateLimitedShort, description: "429 api_error.rate_limit_exceeded with Retry-After: 1.",
		source: seedAs(LinkRateLimitedShort), fault: &Fault{Status: http.StatusTooManyRequests, RetryAfter: "1"}},
}

// knownLinks indexes links by id and parses their fixtures, once: LinkLarge
// takes a moment to generate. The fixtures are embedded, so a broken one is a
// bug in this package and panics.
var knownLinks = sync.OnceValue(func() map[string]link {
	m := make(map[string]link, len(links))
	for _, l := range links {
		if l.source != nil {
			f, err := loadFixture(l.id, l.source)
			if err != nil {
				panic(err)
			}
			l.fixture = f
		}
		if l.dripOver > 0 {
			// Never change links' Fault: it is shared.
			f := *l.fault
			f.Drip = l.dripOver / time.Duration((len(l.fixture.full)+dripChunk-1)/dripChunk)
			l.fault = &f
		}
		m[l.id] = l
	}
	return m
})

// fixtureReply is the identity answer for linkID as its fixture has it,
// keeping only the accounts listed in query's account_ids when that
// parameter is present.
func fixtureReply(linkID string, query url.Values) reply {
	l, ok := knownLinks()[linkID]
	switch {
	case !ok && strings.HasPrefix(linkID, LinkCopyPrefix):
		return jsonReply(http.StatusOK, knownLinks()[LinkHousehold].fixture.copyAs(linkID, query["account_ids"]))
	case !ok && isBenchLink(linkID):
		return benchReply(linkID, query)
	case !ok:
		return errLinkNotFound
	case l.fixture == nil:
		return l.failure
	}
	body := l.fixture.full
	if ids, ok := query["account_ids"]; ok {
		body = l.fixture.render(ids)
	}
	return jsonReply(http.StatusOK, body)
}

//go:embed fixtures/*.json
var fixtureFiles embed.FS

// fixtureFile returns a source reading fixtures/name.
func fixtureFile(name string) func() ([]byte, error) {
	return func() ([]byte, error) { return fixtureFiles.ReadFile("fixtures/" + name) }
}

// seedAs returns a source of LinkSeed's answer under linkID.
func seedAs(linkID string) func() ([]byte, error) {
	return func() ([]byte, error) {
		f, err := loadFixture(LinkSeed, fixtureFile("seed.json"))
		if err != nil {
			return nil, err
		}
		return f.copyAs(linkID, nil), nil
	}
}

// fixture is a 200 answer kept as raw JSON, split by account so that
// account_ids can filter it without decoding any value: amounts keep their digits.
type fixture struct {
	accounts   []json.RawMessage
	accountIDs []string
	link       json.RawMessage
	full       []byte // the answer with every account
}

// loadFixture reads and checks the fixture of linkID.
func loadFixture(linkID string, source func() ([]byte, error)) (*fixture, error) {
	raw, err := source()
	if err != nil {
		return nil, fmt.Errorf("sandbox: fixture %s: %w", linkID, err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, fmt.Errorf("sandbox: fixture %s: %w", linkID, err)
	}
	var doc struct {
		Accounts []json.RawMessage `json:"accounts"`
		Link     json.RawMessage   `json:"link"`
	}
	if err := json.Unmarshal(compact.Bytes(), &doc); err != nil {
		return nil, fmt.Errorf("sandbox: fixture %s: %w", linkID, err)
	}
	var l struct {
		LinkID string `json:"link_id"`
	}
	if err := json.Unmarshal(doc.Link, &l); err != nil || l.LinkID != linkID {
		return nil, fmt.Errorf("sandbox: fixture %s: link.link_id is %q (%v)", linkID, l.LinkID, err)
	}
	f := &fixture{accounts: doc.Accounts, link: doc.Link}
	for i, raw := range doc.Accounts {
		var a struct {
			ID string `json:"account_id"`
		}
		if err := json.Unmarshal(raw, &a); err != nil || a.ID == "" {
			return nil, fmt.Errorf("sandbox: fixture %s: account %d has no account_id (%v)", linkID, i, err)
		}
		f.accountIDs = append(f.accountIDs, a.ID)
	}
	f.full = f.render(nil)
	return f, nil
}

// copyAs renders f under another link id, keeping the accounts in keep (nil:
// all of them).
func (f *fixture) copyAs(linkID string, keep []string) []byte {
	var l map[string]json.RawMessage
	if err := json.Unmarshal(f.link, &l); err != nil {
		panic(err) // checked by loadFixture
	}
	l["link_id"] = mustJSON(linkID)
	c := *f
	c.link = mustJSON(l)
	return c.render(keep)
}

// render returns the answer with the accounts whose ids are in keep, or with
// every account when keep is nil.
func (f *fixture) render(keep []string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"accounts":[`)
	n := 0
	for i, raw := range f.accounts {
		if keep != nil && !slices.Contains(keep, f.accountIDs[i]) {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.Write(raw)
		n++
	}
	b.WriteString(`],"link":`)
	b.Write(f.link)
	b.WriteByte('}')
	return b.Bytes()
}

// reply is a canned answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (rp reply) write(w http.ResponseWriter) {
	rp.writeHeader(w)
	w.WriteHeader(rp.status)
	w.Write(rp.body)
}

// writeHeader sets rp's header fields on w.
func (rp reply) writeHeader(w http.ResponseWriter) {
	// Copy the values: the header map belongs to the response from here on.
	for k, v := range rp.header {
		w.Header()[k] = slices.Clone(v)
	}
}

// jsonReply is a JSON answer.
func jsonReply(status int, body []byte) reply {
	return reply{status: status, header: http.Header{"Content-Type": {"application/json"}}, body: body}
}

// apiError is MoneyKit's error body.
type apiError struct {
	ErrorCode        string `json:"error_code"`
	ErrorMessage     string `json:"error_message"`
	DocumentationURL string `json:"documentation_url"`
	LinkErrorCode    string `json:"link_error_code,omitempty"`
}

// reply is the JSON answer carrying e, with extra header key, value pairs.
func (e apiError) reply(status int, header ...string) reply {
	rp := jsonReply(status, mustJSON(e))
	for i := 0; i+1 < len(header); i += 2 {
		rp.header.Set(header[i], header[i+1])
	}
	return rp
}

// Answers shared by several paths.
var (
	errUnauthorized   = apiError{"api_error.auth.unauthorized", "Invalid client credentials.", docsAuth, ""}.reply(http.StatusUnauthorized)
	errTokenExpired   = apiError{"api_error.auth.expired_access_token", "Access token expired", docsAuth, ""}.reply(http.StatusUnauthorized)
	errLinkNotFound   = apiError{"link_error.not_found", "Link not found.", docsLinkErrors, ""}.reply(http.StatusNotFound)
	errRouteNotFound  = apiError{"api_error.not_found", "Not found.", docsErrors, ""}.reply(http.StatusNotFound)
	errTokenMethod    = apiError{"api_error.method_not_allowed", "Method not allowed.", docsErrors, ""}.reply(http.StatusMethodNotAllowed, "Allow", http.MethodPost)
	errIdentityMethod = apiError{"api_error.method_not_allowed", "Method not allowed.", docsErrors, ""}.reply(http.StatusMethodNotAllowed, "Allow", http.MethodGet)
	errPostMethod     = errTokenMethod

	errInternal    = apiError{"api_error.internal", "An internal error occurred. Please try again later.", docsErrors, ""}
	errRateLimited = apiError{"api_error.rate_limit_exceeded", "Rate limit exceeded. Use the value of the Retry-After header as guidance for when to retry the request.", docsRateLimits, ""}
)

// rateLimited is the 429 answer with Retry-After: retryAfter.
func rateLimited(retryAfter string) reply {
	return errRateLimited.reply(http.StatusTooManyRequests, "Retry-After", retryAfter)
}

// mustJSON marshals a value that cannot fail to marshal.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
