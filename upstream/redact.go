package upstream

import "net/url"

// RedactURL returns raw with any password masked, for logs and errors; a
// value that does not parse as a URL is withheld entirely, since it may hold
// a password in a form url.Parse cannot find.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparseable URL]"
	}
	if u.User != nil {
		// A user name alone may be the secret (redis://token@host).
		u.User = url.UserPassword("xxxxx", "xxxxx")
	}
	return u.String()
}
