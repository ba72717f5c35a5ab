// Package ctxkey is the one way this module keeps a value in a
// context.Context: a typed key per value, created by the package that owns
// the value and kept unexported there, so that no other package can set or
// read it but through the owner's accessors.
package ctxkey

import "context"

// Key is a context key for values of type T. Keys are compared by identity:
// each New is a distinct key.
type Key[T any] struct {
	name string // for debugging; also gives Key a size, so that distinct keys never share an address
}

// New returns a new key; name says what it holds (for debugging only).
func New[T any](name string) *Key[T] { return &Key[T]{name: name} }

// With returns a copy of ctx carrying v under k.
func (k *Key[T]) With(ctx context.Context, v T) context.Context {
	return context.WithValue(ctx, k, v)
}

// From returns the value of ctx under k, or T's zero value when there is none.
func (k *Key[T]) From(ctx context.Context) T {
	v, _ := ctx.Value(k).(T)
	return v
}

// String names the key, as context's own keys do in ctx.String().
func (k *Key[T]) String() string { return "ctxkey." + k.name }
