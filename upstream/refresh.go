package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

// EndpointRefresh is the Observer's name for POST /links/{id}/products. Like
// the other endpoint names it is a metrics label: it never holds a link id.
const EndpointRefresh = "refresh"

// Product names a link's products have upstream, for RefreshProducts.
const (
	ProductAccounts       = "accounts"
	ProductAccountNumbers = "account_numbers"
	ProductIdentity       = "identity"
	ProductTransactions   = "transactions"
	ProductInvestments    = "investments"
	ProductEnrichment     = "enrichment"
)

// refreshRequest is the body of POST /links/{id}/products.
type refreshRequest struct {
	Products []string `json:"products"`
}

// RefreshProducts calls POST /links/{id}/products with body {"products":
// products}: MoneyKit accepts the refresh (202) and fetches from the
// institution later. The answer is the link as it stands (decoded as in
// DecodeLink): the new data is there once the product's refreshed_at has
// increased, which MoneyKit announces with a link.product_refresh webhook
// whose state is completed.
//
// The call goes through the same token handling (renewal once on an expired
// token), in-flight limit, breaker, Observer (as EndpointRefresh), body limit
// and error mapping as GetIdentity: a refresh asked too soon is
// api_error.rate_limit_exceeded with RetryAfter from Retry-After (MoneyKit
// allows identity once per link per day), and link errors keep their codes.
//
// It is never retried, whatever the failure: a POST is not idempotent, and a
// retry after a lost answer could spend the link's one refresh of the day on
// a duplicate, or be refused with 429 although the first try was accepted.
// For the same reason it does not use Config.Budget, which paces identity
// GETs.
//
// products must not be empty; names are passed on as they are (upstream may
// know more than the Product constants). The id is not validated again, as
// for GetIdentity, but it always stays one path segment.
func (c *Client) RefreshProducts(ctx context.Context, linkID string, products []string) (*Link, error) {
	if len(products) == 0 {
		return nil, apierr.InvalidArgument("A refresh needs at least one product.")
	}
	path, err := linkPath(linkID, "/products")
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(refreshRequest{Products: products})
	if err != nil {
		return nil, apierr.New(apierr.CodeInternal, 0, err)
	}
	var link *Link
	decode := func(b []byte) (err error) {
		link, err = DecodeLink(b)
		return err
	}
	err = c.throughBreaker(func() error {
		release, err := c.acquire(ctx)
		if err != nil {
			return err
		}
		defer release()
		return c.withToken(ctx, func(tok string) error {
			return c.do(ctx, EndpointRefresh, http.MethodPost, path, bytes.NewReader(body), c.authHeaders(tok, func(h http.Header) {
				h.Set("Content-Type", "application/json")
			}), decode)
		})
	})
	if err != nil {
		return nil, err
	}
	return link, nil
}

// DecodeLink reads a link object, as POST /links/{id}/products and GET
// /links/{id} answer it, with the tolerance of DecodeIdentity: unknown fields,
// null optional ones, odd timestamps kept as Invalid; a missing link_id, invalid
// JSON or trailing data are refused.
func DecodeLink(body []byte) (*Link, error) {
	var l Link
	if err := json.Unmarshal(body, &l); err != nil {
		return nil, fmt.Errorf("decode link: %w", err)
	}
	if l.LinkID == "" {
		return nil, fmt.Errorf("decode link: link_id: %w", errMissingField)
	}
	return &l, nil
}

// linkPath is /links/{id}+suffix with linkID as exactly one segment, as
// identityPath explains.
func linkPath(linkID, suffix string) (string, error) {
	segment := url.PathEscape(linkID)
	if segment == "" || segment == "." || segment == ".." {
		return "", apierr.InvalidArgument("A link id must not be empty or a dot segment.")
	}
	return "/links/" + segment + suffix, nil
}
