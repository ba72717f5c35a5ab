package upstream_test

import (
	"strings"
	"testing"

	"github.com/mkgraph/mkgraph/upstream"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ raw, secret, want string }{
		{"https://user:pa55@api.example.com/x", "pa55", "https://xxxxx:xxxxx@api.example.com/x"},
		{"redis://:pa55@127.0.0.1:6379/0", "pa55", "redis://xxxxx:xxxxx@127.0.0.1:6379/0"},
		{"redis://t0ken@127.0.0.1:6379/0", "t0ken", "redis://xxxxx:xxxxx@127.0.0.1:6379/0"},
		{"https://api.moneykit.com", "", "https://api.moneykit.com"},
		{"http://[::1", "", "[unparseable URL]"},
	}
	for _, tt := range tests {
		got := upstream.RedactURL(tt.raw)
		if got != tt.want || tt.secret != "" && strings.Contains(got, tt.secret) {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}
