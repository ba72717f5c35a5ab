package graph

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

// The fixed messages of requests the transports cannot run. None quotes the
// request: a body or a parameter may be of any size and hold anything.
const (
	msgUnreadableBody    = "The request body could not be read."
	msgNotARequest       = `The request body is not a GraphQL request: send a JSON object such as {"query": "{ __typename }"}, with "variables", "operationName" and "extensions" optional.`
	msgNoQuery           = `The request has no query: send it in "query" (or an automatic persisted query's hash in "extensions").`
	msgBadQueryString    = "The URL's query string could not be read."
	msgBadVariables      = `"variables" is not a JSON object.`
	msgBadExtensions     = `"extensions" is not a JSON object.`
	msgSeveralOperations = "The document has several operations: operationName must name one."
	msgUnknownOperation  = "The document has no operation of the name given in operationName."
	msgBadAPQ            = `extensions.persistedQuery must be an object with "version": 1 and "sha256Hash", the SHA-256 of the query in hex.`
	msgAPQHashMismatch   = "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query sent with it."
	msgBadMethod         = "GraphQL is served over GET and POST."
	msgBadContentType    = "A GraphQL POST has Content-Type: application/json."
	msgUpgrade           = "This server does not serve GraphQL over WebSocket or any other upgraded connection."
	msgGETMutation       = "Only queries may be sent with GET: send mutations with POST."
)

// writeBadRequest answers HTTP 400 with facade.bad_request and msg: a
// request that is not a GraphQL request the transports can read.
func writeBadRequest(ctx context.Context, w http.ResponseWriter, exec graphql.GraphExecutor, contentType, msg string) {
	writeRefusal(ctx, w, exec, contentType, http.StatusBadRequest, apierr.CodeBadRequest, msg)
}

// writeRefusal answers status with one error of code and msg, through the
// executor (so that the presenter and the response middleware see it).
func writeRefusal(ctx context.Context, w http.ResponseWriter, exec graphql.GraphExecutor, contentType string, status int, code, msg string) {
	resp := exec.DispatchError(ctx, gqlerror.List{{Message: msg, Extensions: map[string]any{"code": code}}})
	writeErrors(w, status, resp, contentType)
}

// writeRequestErrors answers the request errors of CreateOperationContext
// (parsing, validation, variable coercion, and the extensions' refusals
// before execution) with the status of requestStatus.
func writeRequestErrors(ctx context.Context, w http.ResponseWriter, exec graphql.GraphExecutor, contentType string, rc *graphql.OperationContext, errs gqlerror.List) {
	errs = clarify(errs)
	if rc != nil {
		ctx = graphql.WithOperationContext(ctx, rc)
	}
	resp := exec.DispatchError(ctx, errs)
	writeErrors(w, requestStatus(resp.Errors, contentType), resp, contentType)
}

// requestStatus is the HTTP status of an answer to a request that was not
// executed:
//   - 422 for the facade's refusals of an operation that is too costly
//     (facade.query_too_complex, facade.too_many_link_ids), whatever the
//     Accept;
//   - 400 for a request that is not one (facade.bad_request,
//     facade.persisted_query_hash_mismatch);
//   - otherwise (parse and validation failures, variable coercion,
//     PERSISTED_QUERY_NOT_FOUND, facade.introspection_disabled,
//     facade.persisted_query_not_allowed), as GraphQL over HTTP says: 200
//     under application/json, 400 under application/graphql-response+json.
//
// Of several errors, the highest status wins.
func requestStatus(errs gqlerror.List, contentType string) int {
	status := 0
	for _, e := range errs {
		s := http.StatusOK
		if contentType == contentTypeGraphQLResponse {
			s = http.StatusBadRequest
		}
		code, _ := e.Extensions["code"].(string)
		switch code {
		case apierr.CodeQueryTooComplex, apierr.CodeTooManyLinkIDs:
			s = http.StatusUnprocessableEntity
		case apierr.CodeBadRequest, apierr.CodePersistedQueryHashMismatch:
			s = http.StatusBadRequest
		}
		status = max(status, s)
	}
	if status == 0 {
		return http.StatusBadRequest
	}
	return status
}

// clarify replaces the messages of gqlgen's request errors that read badly
// or quote the request, and gives a code to any that has none (every error
// the facade answers has one).
func clarify(errs gqlerror.List) gqlerror.List {
	for _, e := range errs {
		code, _ := e.Extensions["code"].(string)
		if code == errcode.ValidationFailed && strings.HasPrefix(e.Message, "operation ") && strings.HasSuffix(e.Message, " not found") {
			// gqlgen: "operation %s not found", with the name given.
			if e.Message == "operation  not found" {
				e.Message = msgSeveralOperations
			} else {
				e.Message = msgUnknownOperation
			}
		}
		if code == "" {
			if e.Extensions == nil {
				e.Extensions = map[string]any{}
			}
			e.Extensions["code"] = apierr.CodeBadRequest
		}
	}
	return errs
}

// writeErrors answers status with a document without data: "data": null
// under application/json (as before), no data entry under
// application/graphql-response+json (nothing was executed; GraphQL over
// HTTP).
func writeErrors(w http.ResponseWriter, status int, resp *graphql.Response, contentType string) {
	var b []byte
	var err error
	if contentType == contentTypeGraphQLResponse {
		b, err = json.Marshal(struct {
			Errors     gqlerror.List  `json:"errors"`
			Extensions map[string]any `json:"extensions,omitempty"`
		}{resp.Errors, resp.Extensions})
	} else {
		b, err = json.Marshal(struct {
			Errors     gqlerror.List  `json:"errors"`
			Data       *struct{}      `json:"data"`
			Extensions map[string]any `json:"extensions,omitempty"`
		}{resp.Errors, nil, resp.Extensions})
	}
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
