// Package defaults is the one rule by which a configuration's unset fields
// take their defaults: a zero or negative count, size or duration means
// "the default". Packages state each default once, as a constant beside the
// code it configures, and fill it with Positive.
package defaults

// Number is what Positive fills: counts, sizes, ratios and durations
// (time.Duration is an int64).
type Number interface {
	~int | ~int64 | ~float64
}

// Positive sets *p to def when *p is zero or negative.
func Positive[T Number](p *T, def T) {
	if *p <= 0 {
		*p = def
	}
}
