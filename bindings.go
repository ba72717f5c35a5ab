package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

func str(p *string) binding {
	return binding{func(s string) error { *p = s; return nil }, func() string { return *p }}
}

func duration(p *time.Duration, positive bool) binding {
	return binding{
		set: func(s string) (err error) {
			*p, err = time.ParseDuration(s)
			switch {
			case err != nil:
			case positive && *p <= 0:
				err = errors.New("must be positive")
			case *p < 0:
				err = errors.New("must not be negative")
			}
			return err
		},
		get: func() string { return p.String() },
	}
}

// number binds a positive integer.
func number[T int | int64](p *T) binding {
	return binding{
		set: func(s string) error {
			v, err := strconv.ParseInt(s, 10, 64)
			if err == nil && (v <= 0 || int64(T(v)) != v) {
				err = errors.New("must be a positive integer")
			}
			*p = T(v)
			return err
		},
		get: func() string { return strconv.FormatInt(int64(*p), 10) },
	}
}

// optionalBool is a boolean whose default depends on other settings.
type optionalBool struct{ set, v bool }

// or returns the value, or def when it was not set.
func (b optionalBool) or(def bool) bool {
	if b.set {
		return b.v
	}
	return def
}

func optBool(p *optionalBool) binding {
	return binding{
		set: func(s string) error {
			if s == "" {
				*p = optionalBool{}
				return nil
			}
			v, err := strconv.ParseBool(s)
			*p = optionalBool{set: true, v: v}
			return err
		},
		get: func() string {
			if !p.set {
				return "default"
			}
			return strconv.FormatBool(p.v)
		},
	}
}

// oneOf binds a string that must be one of values.
func oneOf(p *string, values ...string) binding {
	return binding{
		set: func(s string) error {
			if !slices.Contains(values, s) {
				return fmt.Errorf("want one of %q", values)
			}
			*p = s
			return nil
		},
		get: func() string { return *p },
	}
}

// count binds a non-negative integer; 0 usually means "off".
func count(p *int) binding {
	return binding{
		set: func(s string) error {
			v, err := strconv.Atoi(s)
			if err != nil || v < 0 {
				return errors.New("must be a non-negative integer")
			}
			*p = v
			return nil
		},
		get: func() string { return strconv.Itoa(*p) },
	}
}

// budget binds a rate budget: "" is unset (-1), 0 none, else a positive count.
func budget(p *int) binding {
	return binding{
		set: func(s string) error {
			if s == "" {
				*p = -1
				return nil
			}
			v, err := strconv.Atoi(s)
			if err != nil || v < 0 {
				return errors.New("must be a count of calls per minute, 0 for none")
			}
			*p = v
			return nil
		},
		get: func() string {
			if *p < 0 {
				return "default"
			}
			return strconv.Itoa(*p)
		},
	}
}

// optPositive binds a positive integer whose default depends on other
// settings: "" is unset (0).
func optPositive(p *int) binding {
	return binding{
		set: func(s string) error {
			if s == "" {
				*p = 0
				return nil
			}
			v, err := strconv.Atoi(s)
			if err != nil || v <= 0 {
				return errors.New("must be a positive integer")
			}
			*p = v
			return nil
		},
		get: func() string {
			if *p == 0 {
				return ""
			}
			return strconv.Itoa(*p)
		},
	}
}

func boolean(p *bool) binding {
	return binding{
		set: func(s string) (err error) { *p, err = strconv.ParseBool(s); return err },
		get: func() string { return strconv.FormatBool(*p) },
	}
}

// splitList splits a comma-separated setting, dropping blanks.
func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
