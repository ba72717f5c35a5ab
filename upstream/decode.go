package upstream

// A single-pass JSON reader for the upstream's answers. It validates as it
// goes, fills the structs directly and never re-scans a value, and it reads
// exactly what encoding/json's Unmarshal would read into the same structs
// (decode_reference_test.go keeps that decoder; FuzzDecodeIdentityDifferential
// compares the two): keys matched exactly or case-insensitively, a key given
// twice decoding again into the same field, strings with invalid UTF-8 or
// lone surrogates coerced to U+FFFD, nesting bounded at 10,000 levels. Input is
// untrusted: every index is checked, nothing is recursive except along the
// fixed shape of the structs, and work is linear in the length of the input.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// Each byte's low and high bit, to look at eight bytes at once.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// decoder reads one JSON document held in data.
type decoder struct {
	data  []byte
	pos   int
	depth int
	buf   []byte // unquoted strings that needed unescaping; reused
	skips []byte // kinds of the values being skipped ('{' or '['); reused
}

var errEnd = errors.New("unexpected end of JSON input")

func (d *decoder) syntaxError(what string) error {
	if d.pos >= len(d.data) {
		return errEnd
	}
	return fmt.Errorf("invalid character %q %s at offset %d", d.data[d.pos], what, d.pos)
}

// typeError reports a value of the wrong kind for a field.
func (d *decoder) typeError(want string) error {
	return fmt.Errorf("cannot read a JSON %s as %s at offset %d", kindName(d.data[d.pos]), want, d.pos)
}

func kindName(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// ws skips whitespace and returns the next byte, or 0 at the end (check
// d.pos where a NUL byte matters).
func (d *decoder) ws() byte {
	for d.pos < len(d.data) {
		switch c := d.data[d.pos]; c {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return c
		}
	}
	return 0
}

// value skips whitespace and returns the first byte of the value there, or
// an error when there is none.
func (d *decoder) value() (byte, error) {
	switch c := d.ws(); c {
	case '{', '[', '"', 't', 'f', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return c, nil
	}
	return 0, d.syntaxError("looking for beginning of value")
}

// literal consumes the literal lit (true, false or null) at d.pos.
func (d *decoder) literal(lit string) error {
	for i := 0; i < len(lit); i++ {
		if d.pos >= len(d.data) || d.data[d.pos] != lit[i] {
			return d.syntaxError("in literal " + lit)
		}
		d.pos++
	}
	return nil
}

// open consumes '{' or '[' and counts the level.
func (d *decoder) open() error {
	d.pos++
	if d.depth++; d.depth > maxDepth {
		return errors.New("exceeded max depth")
	}
	return nil
}

// next consumes what follows a member or element: the separator (more is
// true) or the closer, which ends the level.
func (d *decoder) next(closer byte) (more bool, err error) {
	switch d.ws() {
	case ',':
		d.pos++
		return true, nil
	case closer:
		d.pos++
		d.depth--
		return false, nil
	}
	if closer == '}' {
		return false, d.syntaxError("after object key:value pair")
	}
	return false, d.syntaxError("after array element")
}

// first reports whether the object or array just opened has a first member
// (false: it was empty, and its closer is consumed).
func (d *decoder) first(closer byte) bool {
	if d.ws() == closer {
		d.pos++
		d.depth--
		return false
	}
	return true
}

// key reads an object key and its colon. The bytes are valid until the next
// string is read.
func (d *decoder) key() ([]byte, error) {
	if d.ws() != '"' {
		return nil, d.syntaxError("looking for beginning of object key string")
	}
	k, err := d.str()
	if err != nil {
		return nil, err
	}
	if d.ws() != ':' {
		return nil, d.syntaxError("after object key")
	}
	d.pos++
	return k, nil
}

// str reads the JSON string at d.pos and returns its contents: a slice of the
// input when they need no unquoting, else of d.buf (valid until the next call).
func (d *decoder) str() ([]byte, error) {
	start := d.pos + 1
	i := start
	// Eight bytes at a time: the lowest byte flagged is the first quote,
	// backslash, control character or non-ASCII byte (the flags of bytes
	// after it may be wrong, which does not matter).
	for i+8 <= len(d.data) {
		v := binary.LittleEndian.Uint64(d.data[i:])
		q, bs := v^(lsb*'"'), v^(lsb*'\\')
		flags := ((v-lsb*' ')&^v | (q-lsb)&^q | (bs-lsb)&^bs | v) & msb
		if flags == 0 {
			i += 8
			continue
		}
		i += bits.TrailingZeros64(flags) / 8
		if d.data[i] == '"' {
			d.pos = i + 1
			return d.data[start:i], nil
		}
		break // see below
	}
	for i < len(d.data) {
		c := d.data[i]
		if c < utf8.RuneSelf {
			if c == '"' {
				d.pos = i + 1
				return d.data[start:i], nil
			}
			if c == '\\' || c < ' ' {
				break
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(d.data[i:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		i += size
	}
	return d.unquote(start, i)
}

// unquote is str's slow path from i, where an escape, a control character, a
// byte of invalid UTF-8 or the end of input was found; it decodes as
// encoding/json does.
func (d *decoder) unquote(start, i int) ([]byte, error) {
	b := append(d.buf[:0], d.data[start:i]...)
	for {
		if i >= len(d.data) {
			d.pos = i
			return nil, errEnd
		}
		c := d.data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			d.buf = b
			return b, nil
		case c < ' ':
			d.pos = i
			return nil, d.syntaxError("in string literal")
		case c == '\\':
			d.pos = i + 1
			if i+1 >= len(d.data) {
				return nil, errEnd
			}
			switch e := d.data[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, err := d.hex4(i + 2)
				if err != nil {
					return nil, err
				}
				i += 6
				if utf16.IsSurrogate(r) {
					// A pair only when a second escape follows and
					// completes it; the second is read again otherwise.
					if i+1 < len(d.data) && d.data[i] == '\\' && d.data[i+1] == 'u' {
						if r2, err := d.hex4(i + 2); err == nil {
							if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
								b = utf8.AppendRune(b, dec)
								i += 6
								continue
							}
						}
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				return nil, d.syntaxError("in string escape code")
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(d.data[i:])
			b = utf8.AppendRune(b, r) // U+FFFD for a byte of invalid UTF-8
			i += size
		}
	}
}

// hex4 reads the four hex digits of a \u escape at i.
func (d *decoder) hex4(i int) (rune, error) {
	var r rune
	for j := i; j < i+4; j++ {
		if j >= len(d.data) {
			d.pos = j
			return 0, errEnd
		}
		c := d.data[j]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			d.pos = j
			return 0, d.syntaxError("in \\u hexadecimal character escape")
		}
		r = r*16 + rune(c)
	}
	return r, nil
}

// number reads the JSON number at d.pos and returns its text.
func (d *decoder) number() ([]byte, error) {
	start := d.pos
	digits := func() bool {
		n := d.pos
		for d.pos < len(d.data) && isDigit(d.data[d.pos]) {
			d.pos++
		}
		return d.pos > n
	}
	if d.data[d.pos] == '-' {
		d.pos++
	}
	switch {
	case d.pos < len(d.data) && d.data[d.pos] == '0':
		d.pos++
	case d.pos < len(d.data) && isDigit(d.data[d.pos]):
		digits()
	default:
		return nil, d.syntaxError("in numeric literal")
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		d.pos++
		if !digits() {
			return nil, d.syntaxError("after decimal point in numeric literal")
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if !digits() {
			return nil, d.syntaxError("in exponent of numeric literal")
		}
	}
	return d.data[start:d.pos], nil
}
