package upstream

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/mkgraph/mkgraph/internal/apierr"
)

// MaxLinkIDLen is the longest link id ValidateLinkID accepts.
const MaxLinkIDLen = 128

// ValidateLinkID refuses ids that cannot be MoneyKit link ids before any call:
// empty, longer than MaxLinkIDLen bytes, not UTF-8, control characters, or a
// dot segment that a proxy could resolve to another path. It is called once,
// where an id enters (the GraphQL resolvers); the loaders and GetIdentity do
// not check again.
func ValidateLinkID(id string) error {
	switch {
	case id == "":
		return apierr.InvalidArgument("A link id must not be empty.")
	case len(id) > MaxLinkIDLen:
		return apierr.InvalidArgument(fmt.Sprintf("A link id must be at most %d bytes.", MaxLinkIDLen))
	case !utf8.ValidString(id):
		return apierr.InvalidArgument("A link id must be valid UTF-8.")
	case id == "." || id == "..":
		return apierr.InvalidArgument("A link id must not be a dot segment.")
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return apierr.InvalidArgument("A link id must not contain control characters.")
		}
	}
	return nil
}

// identityPath is the path of GET /links/{id}/identity, with linkID as
// exactly one segment whatever it holds: url.PathEscape escapes '/', '?',
// '#', '%', control bytes and invalid UTF-8, and the segments it leaves
// alone that a proxy could resolve to another path (empty, "." and "..")
// are refused before any call.
func identityPath(linkID string) (string, error) {
	return linkPath(linkID, "/identity")
}
