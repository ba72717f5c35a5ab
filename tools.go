//go:build tools

// Package tools pins the code generator's version in go.mod, so that
// `go run github.com/99designs/gqlgen generate` uses the same gqlgen everywhere.
package tools

import (
	_ "github.com/99designs/gqlgen"
)
