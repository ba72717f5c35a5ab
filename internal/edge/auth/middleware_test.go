package auth_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mkgraph/mkgraph/internal/apierr"
	"github.com/mkgraph/mkgraph/internal/edge/auth"
	"github.com/mkgraph/mkgraph/internal/edge/httperr"
)

func TestMiddleware(t *testing.T) {
	a := MustNew(t, auth.Config{Mode: "jwt", HS256Secret: testSecret})
	tok := sign(t, jwt.SigningMethodHS256, testSecret, "", userClaims(nil))
	expired := sign(t, jwt.SigningMethodHS256, testSecret, "", userClaims(jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()}))

	var got *auth.Caller
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = auth.FromContext(r.Context())
		w.WriteHeader(http.StatusTeapot)
	})
	var failed *apierr.Error
	fail := func(w http.ResponseWriter, r *http.Request, err *apierr.Error) {
		failed = err
		httperr.Write(w, r, http.StatusUnauthorized, err)
	}

	tests := []struct {
		name       string
		fail       func(http.ResponseWriter, *http.Request, *apierr.Error)
		authz      string
		wantStatus int
		wantMsg    string
	}{
		{"success", fail, "Bearer " + tok, http.StatusTeapot, ""},
		{"missing", fail, "", http.StatusUnauthorized, msgMissing},
		{"expired", fail, "Bearer " + expired, http.StatusUnauthorized, msgExpired},
		{"forged", fail, "Bearer " + tok + "x", http.StatusUnauthorized, msgInvalid},
		{"default fail", nil, "Bearer " + tok + "x", http.StatusUnauthorized, msgInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, failed = nil, nil
			h := a.Middleware(tt.fail)(next)
			r := httptest.NewRequest(http.MethodPost, "/query", nil)
			if tt.authz != "" {
				r.Header.Set("Authorization", tt.authz)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if tt.wantMsg == "" {
				checkCaller(t, got, nil, user1)
				if v := w.Header().Get("WWW-Authenticate"); v != "" {
					t.Errorf("WWW-Authenticate = %q on success", v)
				}
				if failed != nil {
					t.Errorf("fail called on success with %v", failed)
				}
				return
			}
			if got != nil {
				t.Errorf("next handler called with %+v", got)
			}
			if v := w.Header().Get("WWW-Authenticate"); v != "Bearer" {
				t.Errorf("WWW-Authenticate = %q, want Bearer", v)
			}
			if tt.fail != nil && (failed == nil || failed.Code != apierr.CodeUnauthenticated || failed.Message != tt.wantMsg) {
				t.Errorf("fail called with %v, want %s %q", failed, apierr.CodeUnauthenticated, tt.wantMsg)
			}
			var body struct {
				Errors []struct {
					Message    string         `json:"message"`
					Extensions map[string]any `json:"extensions"`
				} `json:"errors"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if len(body.Errors) != 1 || body.Errors[0].Message != tt.wantMsg || body.Errors[0].Extensions["code"] != apierr.CodeUnauthenticated {
				t.Errorf("body = %s, want one %s error %q", w.Body, apierr.CodeUnauthenticated, tt.wantMsg)
			}
			if strings.Contains(w.Body.String(), strings.TrimPrefix(tt.authz, "Bearer ")) && tt.authz != "" {
				t.Errorf("body %s echoes the token", w.Body)
			}
		})
	}
}

func TestMiddlewareModeNone(t *testing.T) {
	a := MustNew(t, auth.Config{Mode: "none"})
	var got *auth.Caller
	h := a.Middleware(func(w http.ResponseWriter, r *http.Request, err *apierr.Error) {
		t.Errorf("fail called: %v", err)
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = auth.FromContext(r.Context())
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if got == nil || got.Kind != auth.KindAnonymous || !got.MayRead("any-link") {
		t.Errorf("caller = %+v, want an anonymous caller that may read any link", got)
	}
}
