package sandbox

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// signingKey is one ES256 key pair the sandbox signs webhooks with.
type signingKey struct {
	kid string
	key *ecdsa.PrivateKey
}

// newSigningKey returns a fresh P-256 key named kid.
func newSigningKey(n int) signingKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	b := make([]byte, 4)
	rand.Read(b)
	return signingKey{kid: fmt.Sprintf("mkgraph-sandbox-%d-%s", n, hex.EncodeToString(b)), key: key}
}

// SignOptions changes what SignWebhookWith signs, for tests that need a
// forged, replayed or foreign signature. The zero value signs as the
// sandbox's deliveries are signed.
type SignOptions struct {
	// IssuedAt is the iat claim; zero means Options.Now.
	IssuedAt time.Time
	// KeyID is the header's kid; "" means the signing key's own (the
	// current key's when Key is nil, else "foreign").
	KeyID string
	// Key signs instead of the current key, e.g. a key that is not in the
	// JWKS.
	Key *ecdsa.PrivateKey
	// BodySHA256 is the request_body_sha256 claim; "" means the hex SHA-256
	// of the body.
	BodySHA256 string
}

// SignWebhook returns the MoneyKit-Signature of body as the sandbox's
// deliveries carry it: an ES256 JWT whose header kid names the current key
// and whose claims are iat (Options.Now) and request_body_sha256 (the hex
// SHA-256 of body). It is a test hook, to sign bodies of a test's own.
func (s *Server) SignWebhook(body []byte) string {
	return s.SignWebhookWith(body, SignOptions{})
}

// SignWebhookWith is SignWebhook with the changes in o. It is a test hook.
func (s *Server) SignWebhookWith(body []byte, o SignOptions) string {
	iat := o.IssuedAt
	if iat.IsZero() {
		iat = s.now()
	}
	hash := o.BodySHA256
	if hash == "" {
		sum := sha256.Sum256(body)
		hash = hex.EncodeToString(sum[:])
	}
	key, kid := o.Key, "foreign"
	if key == nil {
		h := s.hooks
		h.mu.Lock()
		key, kid = h.keys[0].key, h.keys[0].kid
		h.mu.Unlock()
	}
	if o.KeyID != "" {
		kid = o.KeyID
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iat":                 iat.Unix(),
		"request_body_sha256": hash,
	})
	tok.Header["kid"] = kid
	signed, err := tok.SignedString(key)
	if err != nil {
		panic(fmt.Sprintf("sandbox: signing a webhook: %v", err)) // an ECDSA key of the right curve does not fail
	}
	return signed
}

// Rotate makes a new signing key current and returns its kid. The key it
// replaces stays in the JWKS until the next Rotate, so that a delivery
// signed just before (or a receiver's cached JWKS) still verifies; older
// keys leave the JWKS. Like MoneyKit's rotation it is not announced: a
// receiver that meets an unknown kid fetches the JWKS again.
func (s *Server) Rotate() string {
	h := s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rotations++
	k := newSigningKey(h.rotations)
	h.keys = []signingKey{k, h.keys[0]}
	return k.kid
}

// KeyIDs returns the kids the JWKS lists, the current key's first.
func (s *Server) KeyIDs() []string {
	h := s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]string, len(h.keys))
	for i, k := range h.keys {
		ids[i] = k.kid
	}
	return ids
}

// JWKS returns the JSON Web Key Set GET /.well-known/jwks.json serves: the
// public halves of the current and the previous signing keys, each kty EC,
// crv P-256, alg ES256, use sig, with its kid.
func (s *Server) JWKS() []byte {
	h := s.hooks
	h.mu.Lock()
	keys := slices.Clone(h.keys)
	h.mu.Unlock()
	set := jwkset.JWKSMarshal{Keys: make([]jwkset.JWKMarshal, 0, len(keys))}
	for _, k := range keys {
		j, err := jwkset.NewJWKFromKey(&k.key.PublicKey, jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.AlgES256, USE: jwkset.UseSig},
		})
		if err != nil {
			panic(fmt.Sprintf("sandbox: JWK of %s: %v", k.kid, err))
		}
		set.Keys = append(set.Keys, j.Marshal())
	}
	return mustJSON(set)
}

// serveJWKS answers GET /.well-known/jwks.json: no token, but X-Client-Id
// must be the sandbox's client id.
func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		errIdentityMethod.write(w)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Client-Id")), s.clientID) != 1 {
		errUnauthorized.write(w)
		return
	}
	rp := jsonReply(http.StatusOK, s.JWKS())
	rp.header.Set("Cache-Control", "max-age=3600")
	rp.write(w)
}
