package auth_test

import (
	"context"
	"testing"

	"github.com/mkgraph/mkgraph/internal/edge/auth"
)

func TestCaller(t *testing.T) {
	tests := []struct {
		name   string
		c      *auth.Caller
		id     string
		may    []string
		mayNot []string
	}{
		{"nil", nil, "anonymous", nil, []string{"link-a", ""}},
		{"zero literal fails closed", &auth.Caller{}, "anonymous", nil, []string{"link-a"}},
		{"backend literal fails closed", &auth.Caller{Kind: auth.KindBackend, Subject: "x"}, "backend:x", nil, []string{"link-a"}},
		{"anonymous", auth.Anonymous(), "anonymous", []string{"link-a", "link-z"}, nil},
		{"backend", auth.NewBackend("bff"), "backend:bff", []string{"link-a", "link-z"}, nil},
		{"user", auth.NewUser("u1", "link-a", "link-b", "link-a", ""), "user:u1", []string{"link-a", "link-b"}, []string{"link-c", "", "LINK-A"}},
		{"user without links", auth.NewUser("u2"), "user:u2", nil, []string{"link-a", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.ID(); got != tt.id {
				t.Errorf("ID() = %q, want %q", got, tt.id)
			}
			for _, id := range tt.may {
				if !tt.c.MayRead(id) {
					t.Errorf("MayRead(%q) = false, want true", id)
				}
			}
			for _, id := range tt.mayNot {
				if tt.c.MayRead(id) {
					t.Errorf("MayRead(%q) = true, want false", id)
				}
			}
		})
	}
}

func TestContext(t *testing.T) {
	ctx := context.Background()
	if c := auth.FromContext(ctx); c != nil {
		t.Errorf("FromContext(empty) = %+v, want nil", c)
	}
	u := auth.NewUser("u1", "link-a")
	if c := auth.FromContext(auth.NewContext(ctx, u)); c != u {
		t.Errorf("FromContext = %+v, want %+v", c, u)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[auth.Kind]string{auth.KindAnonymous: "anonymous", auth.KindUser: "user", auth.KindBackend: "backend", auth.Kind(9): "unknown"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}
