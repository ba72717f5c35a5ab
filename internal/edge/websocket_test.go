package edge_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mkgraph/mkgraph/internal/edge"
)

func TestIsWebSocketUpgrade(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		connection []string
		upgrade    []string
		want       bool
	}{
		{"handshake", http.MethodGet, []string{"Upgrade"}, []string{"websocket"}, true},
		{"any case", http.MethodGet, []string{"UPGRADE"}, []string{"WebSocket"}, true},
		{"among parts", http.MethodGet, []string{"keep-alive, Upgrade"}, []string{"h2c , websocket"}, true},
		{"among values", http.MethodGet, []string{"keep-alive", "upgrade"}, []string{"h2c", "websocket"}, true},
		{"POST", http.MethodPost, []string{"Upgrade"}, []string{"websocket"}, false},
		{"no Connection: upgrade", http.MethodGet, []string{"keep-alive"}, []string{"websocket"}, false},
		{"another protocol", http.MethodGet, []string{"Upgrade"}, []string{"h2c"}, false},
		{"a part only containing the token", http.MethodGet, []string{"upgrades"}, []string{"websockets"}, false},
		{"no headers", http.MethodGet, nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/graphql", nil)
			r.Header["Connection"] = tt.connection
			r.Header["Upgrade"] = tt.upgrade
			if got := edge.IsWebSocketUpgrade(r); got != tt.want {
				t.Errorf("IsWebSocketUpgrade = %v, want %v", got, tt.want)
			}
		})
	}
}
