package graph

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

// getTransport is gqlgen's transport.GET (query, operationName, variables
// and extensions in the URL's query string; queries only), with the
// content negotiation, codes and statuses of postTransport.
type getTransport struct{}

var _ graphql.Transport = getTransport{}

// Supports implements graphql.Transport.
func (getTransport) Supports(r *http.Request) bool {
	return r.Header.Get("Upgrade") == "" && r.Method == http.MethodGet
}

// Do implements graphql.Transport.
func (getTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	contentType := responseContentType(r)
	w.Header().Set("Content-Type", contentType)

	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeBadRequest(ctx, w, exec, contentType, msgBadQueryString)
		return
	}
	params := &graphql.RawParams{
		Query:         query.Get("query"),
		OperationName: query.Get("operationName"),
		Headers:       r.Header,
	}
	params.ReadTime.Start = graphql.Now()
	if v := query.Get("variables"); v != "" {
		if !decodeObject(v, &params.Variables) {
			writeBadRequest(ctx, w, exec, contentType, msgBadVariables)
			return
		}
	}
	if v := query.Get("extensions"); v != "" {
		if !decodeObject(v, &params.Extensions) {
			writeBadRequest(ctx, w, exec, contentType, msgBadExtensions)
			return
		}
	}
	params.ReadTime.End = graphql.Now()
	if params.Query == "" && params.Extensions["persistedQuery"] == nil {
		writeBadRequest(ctx, w, exec, contentType, msgNoQuery)
		return
	}

	rc, opErr := exec.CreateOperationContext(ctx, params)
	if opErr != nil {
		writeRequestErrors(ctx, w, exec, contentType, rc, opErr)
		return
	}
	if rc.Operation.Operation != ast.Query {
		// GraphQL over HTTP: 405, and which method to use.
		w.Header().Set("Allow", http.MethodPost)
		writeRefusal(ctx, w, exec, contentType, http.StatusMethodNotAllowed, apierr.CodeBadRequest, msgGETMutation)
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, rc)
	writeResponse(w, responses(ctx))
}

// decodeObject decodes the JSON object (or null) s into m, numbers kept as
// json.Number as gqlgen's transports do.
func decodeObject(s string, m *map[string]any) bool {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(m); err != nil {
		return false
	}
	_, err := dec.Token() // nothing may follow the object
	return err == io.EOF
}

// unsupportedTransport answers what no other transport takes (gqlgen would
// answer "transport not supported", without a code): a method other than
// GET, POST, OPTIONS and HEAD, a POST whose Content-Type is not
// application/json, an upgrade (WebSocket).
type unsupportedTransport struct{}

var _ graphql.Transport = unsupportedTransport{}

// Supports implements graphql.Transport: it takes everything, so it must be
// added last.
func (unsupportedTransport) Supports(*http.Request) bool { return true }

// Do implements graphql.Transport.
func (unsupportedTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	contentType := responseContentType(r)
	w.Header().Set("Content-Type", contentType)
	switch {
	case r.Header.Get("Upgrade") != "":
		writeBadRequest(ctx, w, exec, contentType, msgUpgrade)
	case r.Method == http.MethodPost:
		writeRefusal(ctx, w, exec, contentType, http.StatusUnsupportedMediaType, apierr.CodeBadRequest, msgBadContentType)
	default:
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		writeRefusal(ctx, w, exec, contentType, http.StatusMethodNotAllowed, apierr.CodeBadRequest, msgBadMethod)
	}
}
