package plan

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/mkgraph/mkgraph/graph/model"
	"github.com/mkgraph/mkgraph/upstream"
)

// fakeRoots serves one link for every id; its Accounts panics for ids in
// panicFor.
type fakeRoots struct {
	link     *model.Link
	panicFor map[string]bool
}

func (f fakeRoots) Link(_ context.Context, id string) func() (*model.Link, error) {
	return func() (*model.Link, error) { return f.link, nil }
}

func (f fakeRoots) Links(_ context.Context, ids []string) (func() ([]*model.Link, []error), error) {
	return func() ([]*model.Link, []error) {
		out := make([]*model.Link, len(ids))
		for i := range ids {
			l := *f.link
			l.ID = ids[i]
			out[i] = &l
		}
		return out, make([]error, len(ids))
	}, nil
}

func (f fakeRoots) Accounts(_ context.Context, l *model.Link, ids []string) ([]*model.Account, error) {
	if f.panicFor[l.ID] {
		panic("boom")
	}
	return l.Accounts(ids), nil
}

func operation(t *testing.T, query string) *graphql.OperationContext {
	t.Helper()
	src, err := os.ReadFile("../schema.graphqls")
	if err != nil {
		t.Fatal(err)
	}
	schema := gqlparser.MustLoadSchema(&ast.Source{Name: "schema.graphqls", Input: string(src)})
	doc, errs := gqlparser.LoadQuery(schema, query)
	if errs != nil {
		t.Fatal(errs)
	}
	return &graphql.OperationContext{RawQuery: query, Doc: doc, Operation: doc.Operations[0],
		RecoverFunc: func(context.Context, any) error { return errors.New("Internal error.") }}
}

func run(t *testing.T, query string, roots Roots) (string, gqlerror.List) {
	t.Helper()
	oc := operation(t, query)
	p := NewCache(4).For(context.Background(), oc)
	if p == nil {
		t.Fatalf("no plan for %s", query)
	}
	ctx := graphql.WithResponseContext(context.Background(),
		func(_ context.Context, err error) *gqlerror.Error {
			var ge *gqlerror.Error
			if errors.As(err, &ge) {
				return ge
			}
			return gqlerror.Wrap(err)
		}, nil)
	data := p.Execute(ctx, oc, roots)
	return string(data), graphql.GetErrors(ctx)
}

func seedLink() *model.Link {
	return model.NewLink(&upstream.Identity{
		Link:     upstream.Link{LinkID: "mk_a", InstitutionID: "chase", State: "connected"},
		Accounts: []upstream.Account{{AccountID: "acc_1", Name: "Checking"}},
	}, nil)
}

// A panic below a root field nulls the nearest link, with the error at the
// path where it happened, and the other entries are answered (as gqlgen's
// field guards do).
func TestPanicBelowTheRoot(t *testing.T) {
	roots := fakeRoots{link: seedLink(), panicFor: map[string]bool{"mk_b": true}}
	data, errs := run(t, `{ links(ids: ["mk_a", "mk_b", "mk_c"]) { id accounts { id } } }`, roots)
	want := `{"links":[{"id":"mk_a","accounts":[{"id":"acc_1"}]},null,{"id":"mk_c","accounts":[{"id":"acc_1"}]}]}`
	if data != want {
		t.Errorf("data\n got %s\nwant %s", data, want)
	}
	if len(errs) != 1 || errs[0].Path.String() != "links[1].accounts" || len(errs[0].Locations) != 0 {
		t.Errorf("errors = %v, want one at links[1].accounts without a location", errs)
	}
}

// The plan writes what gqlgen's marshalers write, for the cases that need
// care: escapes, nulls, aliases merged, __typename, an empty selection of
// accounts.
func TestWrites(t *testing.T) {
	avatar := "a\"b\\c\n\u2028<>&\x01"
	l := seedLink()
	l.InstitutionAvatar = &avatar
	for _, tc := range []struct{ query, want string }{
		{`{ link(id: "mk_a") { institutionAvatar webhook } }`, `{"link":{"institutionAvatar":"a\"b\\c\n` + "\u2028" + `<>&\u0001","webhook":null}}`},
		{`{ __typename a: link(id: "x") { __typename id } a: link(id: "x") { state } }`, `{"__typename":"Query","a":{"__typename":"Link","id":"mk_a","state":"CONNECTED"}}`},
		{`{ link(id: "x") { accounts(ids: []) { id } tags } }`, `{"link":{"accounts":[],"tags":[]}}`},
		{`{ link(id: "x") { id @skip(if: true) provider @include(if: false) state } }`, `{"link":{"state":"CONNECTED"}}`},
	} {
		data, errs := run(t, tc.query, fakeRoots{link: l})
		if data != tc.want || errs != nil {
			t.Errorf("%s\n got %s %v\nwant %s", tc.query, data, errs, tc.want)
		}
	}
}

// What the plan does not cover is left to gqlgen.
func TestNotCovered(t *testing.T) {
	for _, q := range []string{
		`{ __schema { queryType { name } } }`,
		`{ link(id: "x") { id ... @defer { state } } }`,
		`mutation { refreshIdentity(linkId: "x") { linkId } }`,
	} {
		oc := operation(t, q)
		if p := NewCache(4).For(context.Background(), oc); p != nil {
			t.Errorf("%s: planned, want it left to gqlgen", q)
		}
	}
}

// A nil where the schema allows none is gqlgen's InvalidNullError at its
// path, and nulls the nearest nullable field.
func TestInvalidNull(t *testing.T) {
	l := seedLink()
	l.Products = nil
	data, errs := run(t, `{ link(id: "x") { id products { identity { refreshedAt } } } }`, fakeRoots{link: l})
	if data != `{"link":null}` {
		t.Errorf("data = %s, want the link null", data)
	}
	var ine *graphql.InvalidNullError
	if len(errs) != 1 || errs[0].Path.String() != "link.products" || !errors.As(errs[0], &ine) ||
		ine.Object != "Link" || ine.Field != "products" || ine.DeclaredType != "Products!" || ine.ListElement {
		t.Errorf("errors = %#v, want one InvalidNullError of Link.products at link.products", errs)
	}
}
