package plan

import (
	"time"
)

func (x *state) strings(list []string) {
	x.buf = append(x.buf, '[')
	for i, s := range list {
		if i > 0 {
			x.buf = append(x.buf, ',')
		}
		x.buf = appendString(x.buf, s)
	}
	x.buf = append(x.buf, ']')
}

func (x *state) optString(s *string) {
	if s == nil {
		x.buf = append(x.buf, "null"...)
		return
	}
	x.buf = appendString(x.buf, *s)
}

// optDecimal is model.MarshalDecimal: the digits quoted (strconv.Quote).
func (x *state) optDecimal(s *string) {
	if s == nil {
		x.buf = append(x.buf, "null"...)
		return
	}
	x.buf = appendQuote(x.buf, *s)
}

// optTime is model.MarshalDateTime: RFC 3339 with nanoseconds, in UTC.
func (x *state) optTime(t *time.Time) {
	if t == nil {
		x.buf = append(x.buf, "null"...)
		return
	}
	x.buf = append(x.buf, '"')
	x.buf = t.UTC().AppendFormat(x.buf, time.RFC3339Nano)
	x.buf = append(x.buf, '"')
}

func (x *state) optBool(b *bool) {
	switch {
	case b == nil:
		x.buf = append(x.buf, "null"...)
	case *b:
		x.buf = append(x.buf, "true"...)
	default:
		x.buf = append(x.buf, "false"...)
	}
}
