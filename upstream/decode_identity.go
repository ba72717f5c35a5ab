package upstream

import (
	"fmt"
	"sync"
	"time"
)

// identityDecoder reads a Get Identity body into an Identity (see decode.go
// for what it reads as encoding/json does). It allocates in blocks: the values
// the upstream may leave out and the lists come from slabs (a pointer each, not
// an allocation each), and the strings are copied into one arena that becomes
// one string for many of them (keep, flush).
type identityDecoder struct {
	decoder
	strings   slab[string]
	bools     slab[bool]
	strPtrs   slab[*string]
	owners    slab[Owner]
	addresses slab[Address]
	phones    slab[PhoneNumber]
	emails    slab[Email]
	balances  slab[Balances]
	statuses  slab[ProductStatus]

	arena  []byte  // the contents of the strings kept since the last flush
	fixups []fixup // where they go

	accounts []Account // zero; what accounts decodes into before copying
}

// fixup is a string kept but not yet written: arena[off:end] into *dst.
type fixup struct {
	dst      *string
	off, end int
}

// maxFixups bounds the strings kept between two flushes.
const maxFixups = 256

// decoders keeps identityDecoders with their scratch buffers between calls.
var decoders = sync.Pool{New: func() any { return new(identityDecoder) }}

func newIdentityDecoder(body []byte) *identityDecoder {
	d := decoders.Get().(*identityDecoder)
	d.decoder = decoder{data: body, buf: d.buf[:0], skips: d.skips[:0]}
	d.strings = slab[string]{first: 16, last: 1024}
	d.bools = slab[bool]{first: 16, last: 1024}
	d.strPtrs = slab[*string]{first: 8, last: 512}
	d.owners = slab[Owner]{first: 4, last: 128}
	d.addresses = slab[Address]{first: 4, last: 256}
	d.phones = slab[PhoneNumber]{first: 4, last: 256}
	d.emails = slab[Email]{first: 4, last: 256}
	d.balances = slab[Balances]{first: 1, last: 128}
	d.statuses = slab[ProductStatus]{first: 6, last: 64}
	if d.fixups == nil {
		d.fixups = make([]fixup, 0, maxFixups)
	}
	return d
}

// release returns d to the pool without anything of the answer it decoded.
func (d *identityDecoder) release() {
	clear(d.fixups[:cap(d.fixups)])
	accounts := d.accounts[:0]
	if cap(accounts) > maxPooledAccounts {
		accounts = nil
	}
	*d = identityDecoder{
		decoder:  decoder{buf: d.buf[:0], skips: d.skips[:0]},
		arena:    d.arena[:0],
		fixups:   d.fixups[:0],
		accounts: accounts,
	}
	if cap(d.buf) <= 64<<10 && cap(d.arena) <= 64<<10 && cap(d.skips) <= 64<<10 {
		decoders.Put(d)
	}
}

// maxPooledAccounts bounds the accounts a pooled decoder keeps room for.
const maxPooledAccounts = 2048

// accountList reads the accounts into d.accounts, then copies them into a
// list of their exact length: one allocation, no room left over in what the
// cache keeps. A second accounts key reads into the first list (array).
func (d *identityDecoder) accountList(c byte, dst *[]Account) error {
	if *dst != nil || c != '[' {
		return array(d, c, dst, nil, (*identityDecoder).account)
	}
	s := d.accounts[:0]
	err := array(d, c, &s, nil, (*identityDecoder).account)
	if err != nil {
		clear(d.accounts[:cap(d.accounts)]) // partly written
		return err
	}
	d.flush() // the strings kept point into s
	*dst = append(make([]Account, 0, len(s)), s...)
	clear(s)
	if cap(s) > 0 {
		d.accounts = s[:0]
	}
	return nil
}

// keep sets *dst to a copy of s, written at the next flush. Until then dst
// must stay where it is: array flushes before it moves a list.
func (d *identityDecoder) keep(dst *string, s []byte) {
	if len(d.fixups) == maxFixups {
		d.flush()
	}
	off := len(d.arena)
	d.arena = append(d.arena, s...)
	d.fixups = append(d.fixups, fixup{dst, off, len(d.arena)})
}

// flush writes the strings kept, all slices of one new string, in the order
// they were kept (a key given twice: the last value).
func (d *identityDecoder) flush() {
	all := string(d.arena)
	for _, f := range d.fixups {
		*f.dst = all[f.off:f.end]
	}
	clear(d.fixups)
	d.arena, d.fixups = d.arena[:0], d.fixups[:0]
}

// DecodeIdentity reads a Get Identity body. It tolerates unknown fields, null
// optional ones and a missing accounts list (no accounts), and refuses what
// cannot be an identity answer: invalid or truncated JSON, trailing data, a
// missing link or account id.
func DecodeIdentity(body []byte) (*Identity, error) {
	d := newIdentityDecoder(body)
	defer d.release()
	id := new(Identity)
	if err := d.identity(id); err != nil {
		return nil, fmt.Errorf("decode identity: %w", err)
	}
	if d.ws(); d.pos < len(d.data) {
		return nil, fmt.Errorf("decode identity: %w", d.syntaxError("after top-level value"))
	}
	d.flush()
	if id.Link.LinkID == "" {
		return nil, fmt.Errorf("decode identity: link.link_id: %w", errMissingField)
	}
	for i := range id.Accounts {
		if id.Accounts[i].AccountID == "" {
			return nil, fmt.Errorf("decode identity: accounts[%d].account_id: %w", i, errMissingField)
		}
	}
	return id, nil
}

// array reads a JSON array (or null: nil) into *dst as encoding/json does:
// into the elements already there first (an array given twice), else into
// new ones, from sl while they fit when it is given.
func array[T any](d *identityDecoder, c byte, dst *[]T, sl *slab[T], elem func(d *identityDecoder, c byte, v *T) error) error {
	switch c {
	case 'n':
		*dst = nil
		return d.literal("null")
	case '[':
	default:
		return d.typeError("an array")
	}
	if err := d.open(); err != nil {
		return err
	}
	s, inSlab := *dst, false
	if s == nil && sl != nil {
		s, inSlab = sl.start()
	}
	i := 0
	for more := d.first(']'); more; i++ {
		if i == cap(s) {
			if i > 0 {
				d.flush() // append moves the list: write what points into it
			}
			var zero T
			s = append(s, zero)
		} else if i >= len(s) {
			s = s[:i+1]
		}
		c, err := d.value()
		if err != nil {
			return err
		}
		if err := elem(d, c, &s[i]); err != nil {
			return err
		}
		if more, err = d.next(']'); err != nil {
			return err
		}
	}
	s = s[:i]
	if inSlab {
		s = sl.finish(s)
	} else if i == 0 {
		s = []T{}
	}
	*dst = s
	return nil
}

// str reads a string into *dst; null leaves it as it is.
func (d *identityDecoder) str(c byte, dst *string) error {
	switch c {
	case '"':
		s, err := d.decoder.str()
		d.keep(dst, s)
		return err
	case 'n':
		return d.literal("null")
	}
	return d.typeError("a string")
}

// optStr reads a string or null (nil) into *dst.
func (d *identityDecoder) optStr(c byte, dst **string) error {
	switch c {
	case '"':
		s, err := d.decoder.str()
		p := d.strings.one()
		d.keep(p, s)
		*dst = p
		return err
	case 'n':
		*dst = nil
		return d.literal("null")
	}
	return d.typeError("a string")
}

// optBool reads a boolean or null (nil) into *dst.
func (d *identityDecoder) optBool(c byte, dst **bool) error {
	switch c {
	case 't', 'f':
		p := d.bools.one()
		*p, *dst = c == 't', p
		if c == 't' {
			return d.literal("true")
		}
		return d.literal("false")
	case 'n':
		*dst = nil
		return d.literal("null")
	}
	return d.typeError("a boolean")
}

// decimal reads a number, a string holding one, or null (absent).
func (d *identityDecoder) decimal(c byte, dst *Decimal) error {
	switch c {
	case 'n':
		d.keep(&dst.digits, nil) // after any digits kept before
		return d.literal("null")
	case '"':
		s, err := d.decoder.str()
		if err != nil {
			return err
		}
		if !isNumber(s) {
			return fmt.Errorf("not a decimal number: %.40q", s)
		}
		*dst = Decimal{}
		d.keep(&dst.digits, s)
		return nil
	case '{', '[', 't', 'f':
		return d.typeError("a decimal")
	}
	s, err := d.number()
	*dst = Decimal{}
	d.keep(&dst.digits, s)
	return err
}

// timestamp reads a time string or null; any other value is kept as Invalid
// (Timestamp.UnmarshalJSON).
func (d *identityDecoder) timestamp(c byte, dst *Timestamp) error {
	*dst = Timestamp{}
	switch c {
	case 'n':
		return d.literal("null")
	case '"':
		s, err := d.decoder.str()
		if err != nil || len(s) == 0 {
			return err
		}
		if t, err := parseTimestamp(s); err == nil {
			dst.Time = t
		} else {
			dst.Invalid = true
		}
		return nil
	}
	dst.Invalid = true
	return d.skip(c)
}

// parseTimestamp is ParseTimestamp without converting b to a string for the
// RFC 3339 times the upstream sends: time.Time.UnmarshalText accepts what
// time.Parse(time.RFC3339Nano, ·), ParseTimestamp's first layout, accepts,
// with the same instant (FuzzTimestamp checks it).
func parseTimestamp(b []byte) (time.Time, error) {
	var t time.Time
	if t.UnmarshalText(b) != nil {
		return ParseTimestamp(string(b))
	}
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return time.Time{}, fmt.Errorf("not a timestamp: %.40q", b)
	}
	return t.UTC(), nil
}
