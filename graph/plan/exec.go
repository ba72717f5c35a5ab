package plan

import (
	"context"
	"errors"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/mkgraph/mkgraph/graph/model"
)

// Roots are the resolvers a plan runs: package graph's own, so that
// authorization (before any loader), the loaders and the account budget are
// those gqlgen runs.
type Roots interface {
	// Link starts loading link(id:) and returns its wait.
	Link(ctx context.Context, id string) func() (*model.Link, error)
	// Links starts loading links(ids:); err refuses the whole field, errs[i]
	// the entry at index i.
	Links(ctx context.Context, ids []string) (wait func() (links []*model.Link, errs []error), err error)
	// Accounts is Link.accounts(ids:).
	Accounts(ctx context.Context, l *model.Link, ids []string) ([]*model.Account, error)
}

// Runnable reports whether the arguments that oc's variables supply coerce;
// when one does not, gqlgen runs the operation (and says why, as it does).
func (p *Plan) Runnable(oc *graphql.OperationContext) bool {
	for _, d := range p.dynamic {
		if _, err := coerce(d.field.ArgumentMap(oc.Variables), d.kind); err != nil {
			return false
		}
	}
	return true
}

// state is one run.
type state struct {
	ctx   context.Context
	oc    *graphql.OperationContext
	roots Roots
	buf   []byte
	path  []ast.PathElement
}

// pending is a root field started, not yet written.
type pending struct {
	link     func() (*model.Link, error)
	links    func() ([]*model.Link, []error)
	err      error
	panicked bool // err is a recovered panic's
}

// Execute runs the plan and returns the data's JSON (null when a non-null
// root field failed); errors go to ctx's response context, as gqlgen's do.
// Every root field is started (authorized, its loads queued) before any is
// awaited, so that the loaders see every link of the operation at once.
func (p *Plan) Execute(ctx context.Context, oc *graphql.OperationContext, roots Roots) []byte {
	buf := make([]byte, 0, p.size.Load()+64)
	out := p.execute(ctx, oc, roots, buf)
	p.size.Store(min(int64(len(out)), maxSizeHint))
	return out
}

// maxSizeHint bounds the buffer a run starts with: one large answer must
// not make every later run of the plan allocate as much up front.
const maxSizeHint = 256 << 10

func (p *Plan) execute(ctx context.Context, oc *graphql.OperationContext, roots Roots, buf []byte) []byte {
	x := &state{ctx: ctx, oc: oc, roots: roots, buf: buf, path: make([]ast.PathElement, 0, 8)}
	started := make([]pending, len(p.roots))
	for i := range p.roots {
		started[i] = x.start(&p.roots[i])
	}
	valid := true
	if len(p.roots) == 0 {
		x.buf = append(x.buf, '{')
	}
	for i := range p.roots {
		r := &p.roots[i]
		x.buf = append(x.buf, r.prefix...)
		x.path = append(x.path[:0], r.path)
		if !x.root(r, &started[i]) {
			valid = false
		}
	}
	if !valid {
		return append(x.buf[:len(buf)], "null"...)
	}
	return append(x.buf, '}')
}

func (x *state) args(a args, f *ast.Field, kind rootKind) args {
	if a.constant {
		return a
	}
	a, _ = coerce(f.ArgumentMap(x.oc.Variables), kind) // Runnable checked it
	return a
}

func (x *state) start(r *rootField) (p pending) {
	defer func() {
		if v := recover(); v != nil {
			p = pending{err: x.oc.RecoverFunc(x.ctx, v), panicked: true}
		}
	}()
	switch r.kind {
	case rootLink:
		p.link = x.roots.Link(x.ctx, x.args(r.args, r.field, rootLink).id)
	case rootLinks:
		p.links, p.err = x.roots.Links(x.ctx, x.args(r.args, r.field, rootLinks).ids)
	}
	return p
}

// root writes one root field's value; false when it is null and may not be.
func (x *state) root(r *rootField, p *pending) (ok bool) {
	mark := len(x.buf)
	defer func() {
		if v := recover(); v != nil {
			x.buf = x.buf[:mark]
			x.panicError(x.oc.RecoverFunc(x.ctx, v))
			ok = x.null(r.kind != rootLinks)
		}
	}()
	if p.err != nil {
		if p.panicked {
			x.panicError(p.err)
		} else {
			x.fieldError(r.field, p.err)
		}
		return x.null(r.kind != rootLinks)
	}
	switch r.kind {
	case rootTypename:
		x.buf = append(x.buf, `"Query"`...)
	case rootLink:
		l, err := p.link()
		if err != nil {
			x.fieldError(r.field, err)
			return x.null(true)
		}
		x.optLink(l, r.sel)
	case rootLinks:
		links, errs := p.links()
		for i, err := range errs {
			if err != nil {
				x.indexError(r.field, i, err)
			}
		}
		x.buf = append(x.buf, '[')
		for i, l := range links {
			if i > 0 {
				x.buf = append(x.buf, ',')
			}
			x.path = append(x.path, ast.PathIndex(i))
			x.optLink(l, r.sel)
			x.path = x.path[:len(x.path)-1]
		}
		x.buf = append(x.buf, ']')
	}
	return true
}

// optLink writes a nullable link: null when it is nil or invalid. A panic
// while writing it (a resolver below it, a bug) is that link's error, at
// the path where it happened and without a location, as gqlgen's field
// guards report it; the link is null and the rest goes on.
func (x *state) optLink(l *model.Link, sel *object) {
	mark, depth := len(x.buf), len(x.path)
	defer func() {
		if v := recover(); v != nil {
			x.panicError(x.oc.RecoverFunc(x.ctx, v))
			x.buf, x.path = append(x.buf[:mark], "null"...), x.path[:depth]
		}
	}()
	if l == nil || !x.link(l, sel) {
		x.buf = append(x.buf, "null"...)
	}
}

// null writes null for a field that failed; false when it may not be null.
func (x *state) null(nullable bool) bool {
	x.buf = append(x.buf, "null"...)
	return nullable
}

// fieldError reports a resolver's error at the current path with the
// field's location, as gqlgen's resolveField does.
func (x *state) fieldError(f *ast.Field, err error) {
	x.add(err, f, x.copyPath())
}

// panicError reports a recovered panic at the current path, without a
// location: gqlgen's field guard reports it so (graphql.ErrorOnPath).
func (x *state) panicError(err error) {
	x.add(err, nil, x.copyPath())
}

// indexError reports the error of links(ids:) entry i, as addIndexErrors.
func (x *state) indexError(f *ast.Field, i int, err error) {
	x.add(err, f, append(x.copyPath(), ast.PathIndex(i)))
}

// add reports err as gqlgen's resolveField does: a *gqlerror.Error inside
// it gets the path and location it lacks and err itself goes on (the
// presenter sees the resolver's own error); anything else is wrapped.
func (x *state) add(err error, f *ast.Field, path ast.Path) {
	ge, ok := errors.AsType[*gqlerror.Error](err)
	if !ok {
		ge = gqlerror.WrapPath(path, err)
		err = ge
	} else if ge.Path == nil {
		ge.Path = path
	}
	if ge.Locations == nil && f != nil && f.Position != nil && f.Position.Line != 0 {
		ge.Locations = []gqlerror.Location{{Line: f.Position.Line, Column: f.Position.Column}}
	}
	graphql.AddError(x.ctx, err)
}

// invalidNull reports a nil value where the schema allows none (field
// Object.field, declared type declared; element: a nil list entry), at the
// current path, as gqlgen's generated marshalers do (graphql.
// AddInvalidNullError: a *graphql.InvalidNullError, without a location).
func (x *state) invalidNull(object, field, declared string, element bool) bool {
	path := x.copyPath()
	graphql.AddError(x.ctx, gqlerror.WrapPath(path, &graphql.InvalidNullError{Object: object, Field: field,
		DeclaredType: declared, Source: graphql.NullSourceModelField, ListElement: element, Path: path}))
	return false
}

func (x *state) copyPath() ast.Path {
	return append(ast.Path(nil), x.path...)
}
