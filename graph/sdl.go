package graph

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/vektah/gqlparser/v2/formatter"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/edge/httperr"
)

// SchemaPath is where the schema is served as SDL, for codegen tools
// (graphql-codegen, Apollo's rover, gql.tada) that read a file rather than
// run an introspection query.
const SchemaPath = "/graphql/schema.graphql"

// SDL is the schema the server executes, in GraphQL's schema definition
// language: gqlgen's parsed schema printed by gqlparser's formatter, with
// every description and @specifiedBy, and without the built-in types and
// directives.
var SDL = sync.OnceValue(func() string {
	var b strings.Builder
	formatter.NewFormatter(&b, formatter.WithIndent("  ")).FormatSchema(NewExecutableSchema(Config{}).Schema())
	return b.String()
})

// sdlETag is the entity tag of SDL, so that a tool asking again gets 304.
var sdlETag = sync.OnceValue(func() string {
	sum := sha256.Sum256([]byte(SDL()))
	return `"` + hex.EncodeToString(sum[:16]) + `"`
})

// errIntrospectionDisabled answers the schema file while introspection is
// off, as an introspection query is answered.
var errIntrospectionDisabled = &apierr.Error{Code: apierr.CodeIntrospectionDisabled, Message: "Introspection is disabled on this server."}

// SchemaHandler serves SDL as text/plain; charset=utf-8 when allowed (the
// introspection setting), and otherwise refuses with HTTP 404 and
// facade.introspection_disabled, through httperr like every refusal before
// execution: a production server does not say what it serves. The schema
// holds no data, so no credentials are asked for; it is the
// graph/schema.graphqls of the source repository.
func SchemaHandler(allowed bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed {
			httperr.Write(w, r, http.StatusNotFound, errIntrospectionDisabled)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		// Revalidated on each use: a deployment changes the schema.
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", sdlETag())
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(SDL()))
	})
}
