package model_test

import (
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/graph/model"
	"github.com/mkgraph/mkgraph/upstream"
)

// MustDecode decodes an identity answer as the upstream client would.
func MustDecode(tb testing.TB, body string) *upstream.Identity {
	tb.Helper()
	id, err := upstream.DecodeIdentity([]byte(body))
	if err != nil {
		tb.Fatalf("DecodeIdentity(%s): %v", body, err)
	}
	return id
}

// warning is one call of a model.Warner.
type warning struct{ Kind, Value string }

// recorder returns a Warner that appends to *got.
func recorder(got *[]warning) model.Warner {
	return func(kind, value string) { *got = append(*got, warning{kind, value}) }
}

func ptr[T any](v T) *T { return &v }

func utc(s string) *time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	t = t.UTC()
	return &t
}

// linkJSON is an identity answer with the given link fields spliced in.
func linkJSON(linkFields string) string {
	return `{"accounts":[],"link":{"link_id":"mk_1","institution_id":"i","institution_name":"I","provider":"p"` + linkFields + `}}`
}

// accountJSON is an identity answer with one account with the given fields.
func accountJSON(accountFields string) string {
	return `{"accounts":[{"account_id":"acc_1","account_type":"depository.checking","name":"C"` + accountFields + `}],"link":{"link_id":"mk_1","state":"connected"}}`
}
