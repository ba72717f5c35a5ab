package sandbox

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

// tokenResponse is the body of a successful POST /auth/token.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		errTokenMethod.write(w)
		return
	}
	s.mu.Lock()
	s.tokenCalls++
	s.mu.Unlock()

	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" || !s.validClient(clientCredentials(r)) {
		errUnauthorized.write(w)
		return
	}
	token := newToken()
	s.mu.Lock()
	s.pruneTokens()
	s.tokens[token] = s.now().Add(s.ttl)
	s.mu.Unlock()
	jsonReply(http.StatusCreated, mustJSON(tokenResponse{
		AccessToken: token,
		TokenType:   "bearer",
		ExpiresIn:   int(s.ttl / time.Second),
	})).write(w)
}

// clientCredentials returns the Basic credentials if sent, else the form fields.
func clientCredentials(r *http.Request) (id, secret string) {
	if id, secret, ok := r.BasicAuth(); ok {
		return id, secret
	}
	return r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
}

// validClient reports whether id and secret are the accepted credentials,
// in time independent of their contents.
func (s *Server) validClient(id, secret string) bool {
	idOK := subtle.ConstantTimeCompare([]byte(id), s.clientID)
	secretOK := subtle.ConstantTimeCompare([]byte(secret), s.clientSecret)
	return idOK&secretOK == 1
}

// newToken returns 64 random hex characters.
func newToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}

// authorize returns the 401 answer for r, or nil when r carries valid client
// headers or a live token this server issued.
func (s *Server) authorize(r *http.Request) *reply {
	// A bearer token, when sent, decides: an expired one is refused even
	// with valid client headers, so that clients' token renewal is tested.
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if r.Header.Get("Authorization") == "" {
		if s.validClient(r.Header.Get("X-Client-Id"), r.Header.Get("X-Client-Secret")) {
			return nil
		}
		return &errUnauthorized
	}
	if !strings.EqualFold(scheme, "Bearer") {
		return &errUnauthorized
	}
	now := s.now() // outside the lock: Options.Now is the caller's code
	s.mu.Lock()
	defer s.mu.Unlock()
	expiry, issued := s.tokens[token]
	switch {
	case !issued:
		return &errUnauthorized
	case !now.Before(expiry), !s.faults.useToken(token):
		return &errTokenExpired
	}
	return nil
}

// maxTokens bounds the remembered tokens of a long-running sandbox. Expired
// tokens are kept up to it, so that "expired" can be told from "unknown".
const maxTokens = 10000

// pruneTokens forgets expired tokens once there are too many; s.mu is held.
func (s *Server) pruneTokens() {
	if len(s.tokens) < maxTokens {
		return
	}
	now := s.now()
	for t, exp := range s.tokens {
		if !now.Before(exp) {
			delete(s.tokens, t)
			delete(s.faults.tokenUses, t)
		}
	}
}
