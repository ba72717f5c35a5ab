package upstream

import "bytes"

// object reads the object whose first byte is c (d.pos is there) into a struct
// whose JSON names are names, calling member with the index of each known key
// and the first byte of its value; other members are checked and skipped.
// null leaves the struct as it is.
func (d *decoder) object(c byte, names []string, member func(i int, c byte) error) error {
	switch c {
	case 'n':
		return d.literal("null")
	case '{':
	default:
		return d.typeError("an object")
	}
	if err := d.open(); err != nil {
		return err
	}
	if !d.first('}') {
		return nil
	}
	hint := 0
	for {
		k, err := d.key()
		if err != nil {
			return err
		}
		i := field(names, k, hint)
		c, err := d.value()
		if err != nil {
			return err
		}
		if i < 0 {
			err = d.skip(c)
		} else {
			hint, err = i+1, member(i, c)
		}
		if err != nil {
			return err
		}
		if more, err := d.next('}'); err != nil || !more {
			return err
		}
	}
}

// skip reads and checks the value at d.pos (as value returned it) without
// keeping it. Nested levels are kept on d.skips, not the call stack.
func (d *decoder) skip(c byte) error {
	base := len(d.skips)
	defer func() { d.skips = d.skips[:base] }()
	for {
		switch c {
		case '{', '[':
			if err := d.open(); err != nil {
				return err
			}
			closer := byte('}')
			if c == '[' {
				closer = ']'
			}
			if d.first(closer) {
				d.skips = append(d.skips, closer)
				if closer == '}' {
					if _, err := d.key(); err != nil {
						return err
					}
				}
				var err error
				if c, err = d.value(); err != nil {
					return err
				}
				continue
			}
		case '"':
			if err := d.skipString(); err != nil {
				return err
			}
		case 't':
			if err := d.literal("true"); err != nil {
				return err
			}
		case 'f':
			if err := d.literal("false"); err != nil {
				return err
			}
		case 'n':
			if err := d.literal("null"); err != nil {
				return err
			}
		default:
			if _, err := d.number(); err != nil {
				return err
			}
		}
		// A value ended: close the levels it ended, then go on with the
		// next member or element.
		for {
			if len(d.skips) == base {
				return nil
			}
			closer := d.skips[len(d.skips)-1]
			more, err := d.next(closer)
			if err != nil {
				return err
			}
			if more {
				if closer == '}' {
					if _, err := d.key(); err != nil {
						return err
					}
				}
				if c, err = d.value(); err != nil {
					return err
				}
				break
			}
			d.skips = d.skips[:len(d.skips)-1]
		}
	}
}

// skipString checks a string without unquoting it.
func (d *decoder) skipString() error {
	i := d.pos + 1
	for i < len(d.data) {
		switch c := d.data[i]; {
		case c == '"':
			d.pos = i + 1
			return nil
		case c < ' ':
			d.pos = i
			return d.syntaxError("in string literal")
		case c == '\\':
			if i+1 >= len(d.data) {
				d.pos = i + 1
				return errEnd
			}
			switch d.data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, err := d.hex4(i + 2); err != nil {
					return err
				}
				i += 6
			default:
				d.pos = i + 1
				return d.syntaxError("in string escape code")
			}
		default:
			i++ // any other byte, even invalid UTF-8, as encoding/json
		}
	}
	d.pos = i
	return errEnd
}

// field returns the index in names of the field key names: its exact name
// first, then one equal under Unicode case folding (as encoding/json
// matches), trying hint first; -1 when none.
func field(names []string, key []byte, hint int) int {
	if hint < len(names) && names[hint] == string(key) {
		return hint
	}
	for i, n := range names {
		if n == string(key) {
			return i
		}
	}
	for i, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			return i
		}
	}
	return -1
}
