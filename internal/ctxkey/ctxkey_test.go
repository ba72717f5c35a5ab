package ctxkey_test

import (
	"context"
	"testing"

	"github.com/mkgraph/mkgraph/internal/ctxkey"
)

func TestKeys(t *testing.T) {
	a, b := ctxkey.New[*int]("a"), ctxkey.New[*int]("b")
	one := 1
	ctx := a.With(context.Background(), &one)
	if got := a.From(ctx); got != &one {
		t.Errorf("a.From = %v, want the value set", got)
	}
	if got := b.From(ctx); got != nil {
		t.Errorf("b.From = %v, want nil: keys of the same type must be distinct", got)
	}
	if got := a.From(context.Background()); got != nil {
		t.Errorf("From of an empty context = %v, want nil", got)
	}
	s := ctxkey.New[string]("s")
	if got := s.From(s.With(ctx, "x")); got != "x" {
		t.Errorf("s.From = %q, want x", got)
	}
	if got := a.String(); got != "ctxkey.a" {
		t.Errorf("String = %q", got)
	}
}
