package label_test

import (
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/internal/obs/label"
)

func TestRoute(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/graphql", "/graphql"},
		{"/graphql/schema.graphql", "/graphql/schema.graphql"},
		{"/", "/"},
		{"/healthz", "/healthz"},
		{"/readyz", "/readyz"},
		{"/graphiql/main-ABC123.js", "/graphiql/"},
		{"/graphiql/licenses.txt", "/graphiql/"},
		{"/graphql/mk_eqkWN34UEoa2NxyALG8pcV", label.Other},
		{"/" + strings.Repeat("a", 9000), label.Other},
		{"/graphiqlx", label.Other},
		{"", label.Other},
	}
	for _, tt := range tests {
		if got := label.Route(tt.path); got != tt.want {
			t.Errorf("Route(%.40q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestOperationName(t *testing.T) {
	tests := []struct{ name, want string }{
		{"", ""},
		{"Seed", "Seed"},
		{"mk_eqkWN34UEoa2NxyALG8pcV", label.Other},
		{"user123456", label.Other},
		{"a?b", label.Other},
		{strings.Repeat("a", 65), label.Other},
	}
	for _, tt := range tests {
		if got := label.OperationName(tt.name); got != tt.want {
			t.Errorf("OperationName(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}
