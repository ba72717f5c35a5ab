package limits

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"net/url"
	"strings"
	"unicode/utf8"
)

// The readers here find a request's query and operationName without
// decoding the rest: encoding/json decodes all of a body and url.ParseQuery
// parses all of a query string, however large, while these skip
// strings eight bytes at a time and measure the query before decoding it,
// stopping as soon as it is too long.
//
// They must find what gqlgen finds (encoding/json into graphql.RawParams;
// url.ParseQuery and Values.Get) in every request gqlgen accepts, or a
// hostile query could pass unchecked. On a request gqlgen refuses they may
// find anything, since nothing runs. Where readObject is unsure it says so,
// and the caller decodes the body as gqlgen does.

// member is a member of a request object the limits read.
type member int

const (
	otherMember member = iota
	queryMember
	operationNameMember
)

// params are a request's query and operationName as raw JSON strings,
// quotes included; nil when absent.
type params struct {
	query, operationName []byte
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// stringEnd returns the index just past the JSON string that starts with
// the quote at b[i], or -1 when it does not end. It reads eight bytes at a
// time, escapes included, so that no string, however hostile, costs more
// than a few hundred microseconds a megabyte.
func stringEnd(b []byte, i int) int {
	j := i + 1
	var carry uint64 // the byte at j is escaped
	for ; j+8 <= len(b); j += 8 {
		x := binary.LittleEndian.Uint64(b[j:])
		quotes, backslashes := byteMask(x, '"'), byteMask(x, '\\')
		if backslashes|carry != 0 {
			var esc uint64
			esc, carry = escaped(backslashes, carry)
			quotes &^= esc
		}
		if quotes != 0 {
			return j + bits.TrailingZeros64(quotes) + 1
		}
	}
	for j += int(carry); j < len(b); j++ {
		switch b[j] {
		case '"':
			return j + 1
		case '\\':
			j++
		}
	}
	return -1
}

const (
	ones  = 0x0101010101010101
	lows  = 0x7f7f7f7f7f7f7f7f
	evens = 0x55 // bits of the even bytes of a word
)

// byteMask returns a bit for each byte of x equal to c, byte 0 in bit 0.
func byteMask(x uint64, c byte) uint64 {
	t := x ^ (uint64(c) * ones)
	m := ^((t&lows + lows) | t | lows) // the high bit of each zero byte of t
	return (m >> 7) * 0x0102040810204080 >> 56
}

// escaped returns the bytes of a word escaped by a backslash, from the mask
// of its backslashes and whether its first byte is escaped by the word
// before (carry), and whether the first byte of the next word is. It is
// simdjson's find_escaped on eight bits: a run of backslashes escapes the
// byte after it when it is odd.
func escaped(backslashes, carry uint64) (esc, next uint64) {
	backslashes &^= carry
	follows := backslashes<<1 | carry
	oddStarts := backslashes &^ evens &^ follows
	sum := oddStarts + backslashes
	next = sum >> 8 & 1
	invert := (sum & 0xff) << 1
	return (evens ^ invert) & follows & 0xff, next
}

// scanString returns the index just past the JSON string that starts with
// the quote at b[i], or -1 when it does not end. With limit >= 0 it stops,
// reporting tooLong, as soon as the string must decode to more than limit
// bytes: each raw byte decodes to at least one, and so does each escape
// (\n, \uXXXX). It reads no more than about six times limit.
func scanString(b []byte, i, limit int) (end int, tooLong bool) {
	if limit < 0 {
		return stringEnd(b, i), false
	}
	j := i + 1
	lost := 0 // raw bytes that escapes may not decode to
	for {
		// Skip eight bytes at a time while they hold no quote or backslash,
		// and no further than proves the string too long.
		stop := min(len(b), i+1+limit+lost+8)
		for j+8 <= stop && byteMask(binary.LittleEndian.Uint64(b[j:]), '"')|byteMask(binary.LittleEndian.Uint64(b[j:]), '\\') == 0 {
			j += 8
		}
		if j-i-1-lost > limit {
			return 0, true
		}
		for k := min(j+8, len(b)); j < k; j++ {
			switch b[j] {
			case '"':
				return j + 1, false
			case '\\':
				if j+1 < len(b) && b[j+1] == 'u' {
					lost += 5
				} else {
					lost++
				}
				j++ // the escaped byte
			}
		}
		if j >= len(b) {
			return -1, false
		}
	}
}

// skipValue returns the index just past the JSON value at b[i]. It checks
// only as much as it needs to find the end of a valid value.
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		end := stringEnd(b, i)
		return end, end >= 0
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				if i = stringEnd(b, i); i < 0 {
					return 0, false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return 0, false
	}
	start := i // a number, true, false or null
	for i < len(b) && !isSpace(b[i]) && b[i] != ',' && b[i] != '}' && b[i] != ']' {
		i++
	}
	return i, i > start
}

// memberOf names the member whose key is the JSON string tok. ok is false
// when the key does not decode.
func memberOf(tok []byte) (m member, ok bool) {
	key := tok[1 : len(tok)-1]
	if bytes.IndexByte(key, '\\') >= 0 {
		// Escaped, "operationName" is at most 78 bytes: its runes are ASCII,
		// and no letter in it folds to a rune outside ASCII.
		if len(tok) > 128 {
			return otherMember, true
		}
		var s string
		if err := json.Unmarshal(tok, &s); err != nil {
			return otherMember, false
		}
		key = []byte(s)
	}
	// encoding/json matches keys to fields case-insensitively, as
	// bytes.EqualFold does (its foldName says so).
	switch {
	case bytes.EqualFold(key, []byte("query")):
		return queryMember, true
	case bytes.EqualFold(key, []byte("operationName")):
		return operationNameMember, true
	}
	return otherMember, true
}

// readObject reads the request object that starts at b[i] == '{' and
// returns its query and operationName and the index just past it.
//
// tooLarge reports a query member that must decode to more than
// maxQuery bytes (unless maxQuery < 0), found without reading further: an
// object with a later query member that overrides it is refused with it,
// since no real client sends two.
//
// ok is false when readObject is unsure: the object is malformed, or gives
// query or operationName a value that is neither a string nor null.
func readObject(b []byte, i, maxQuery int) (p params, end int, tooLarge, ok bool) {
	fail := func() (params, int, bool, bool) { return params{}, 0, false, false }
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return p, i + 1, false, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return fail()
		}
		keyEnd := stringEnd(b, i)
		if keyEnd < 0 {
			return fail()
		}
		m, ok := memberOf(b[i:keyEnd])
		if !ok {
			return fail()
		}
		if i = skipSpace(b, keyEnd); i >= len(b) || b[i] != ':' {
			return fail()
		}
		if i = skipSpace(b, i+1); i >= len(b) {
			return fail()
		}
		switch {
		case m == otherMember:
			if i, ok = skipValue(b, i); !ok {
				return fail()
			}
		case b[i] == '"':
			// A repeated key overwrites, as in encoding/json.
			limit := -1
			if m == queryMember {
				limit = maxQuery
			}
			valueEnd, tooLong := scanString(b, i, limit)
			if tooLong {
				return params{}, 0, true, true
			}
			if valueEnd < 0 {
				return fail()
			}
			if m == queryMember {
				p.query = b[i:valueEnd]
			} else {
				p.operationName = b[i:valueEnd]
			}
			i = valueEnd
		case bytes.HasPrefix(b[i:], []byte("null")):
			i += 4 // null leaves the member as it was, as in encoding/json
		default:
			return fail()
		}
		if i = skipSpace(b, i); i >= len(b) {
			return fail()
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return p, i + 1, false, true
		default:
			return fail()
		}
	}
}

// plain reports whether the inside of a JSON string decodes to itself, as
// unquote reads it.
func plain(s []byte) bool { return bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) }

// unquote decodes the JSON string tok as encoding/json does.
func unquote(tok []byte) (string, bool) {
	s := tok[1 : len(tok)-1]
	if plain(s) {
		return string(s), true
	}
	var v string
	if err := json.Unmarshal(tok, &v); err != nil {
		return "", false
	}
	return v, true
}

// readQueryString finds the first query and operationName values of a raw
// URL query string, still escaped, where url.ParseQuery and Values.Get
// find them. A query string that ParseQuery refuses (a semicolon, a bad
// escape) may be read differently: gqlgen refuses it.
func readQueryString(raw string) (query, operationName string, hasQuery bool) {
	hasOperationName := false
	for raw != "" && !(hasQuery && hasOperationName) {
		var seg string
		seg, raw, _ = strings.Cut(raw, "&")
		if seg == "" || strings.Contains(seg, ";") {
			continue
		}
		k, v, _ := strings.Cut(seg, "=")
		if len(k) > 64 {
			continue // escaped, "operationName" is at most 39 bytes
		}
		key, err := url.QueryUnescape(k)
		if err != nil {
			continue
		}
		switch {
		case key == "query" && !hasQuery:
			query, hasQuery = v, true
		case key == "operationName" && !hasOperationName:
			operationName, hasOperationName = v, true
		}
	}
	return query, operationName, hasQuery
}

// minUnescapedLen is the fewest bytes the URL-escaped s can decode to.
func minUnescapedLen(s string) int {
	return len(s) - 2*strings.Count(s, "%")
}
