package graph_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/graph/loader"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// partWriter records, at each write, what the test asks for.
type partWriter struct {
	http.ResponseWriter
	onWrite func([]byte)
}

func (w *partWriter) Write(b []byte) (int, error) {
	w.onWrite(b)
	return w.ResponseWriter.Write(b)
}
func (w *partWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestDeferReleasesLargeAfterLastPart: room taken for a large answer is
// held while deferred parts are still being built, and given back once the
// last part is built.
func TestDeferReleasesLargeAfterLastPart(t *testing.T) {
	var mu sync.Mutex
	var heldAtWrite []int64
	var factory *loader.Factory
	factory, h := gatedServer(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(&partWriter{ResponseWriter: w, onWrite: func([]byte) {
				a, _ := factory.Gate()
				mu.Lock()
				heldAtWrite = append(heldAtWrite, a)
				mu.Unlock()
			}}, r)
		})
	})
	url := serve(t, h)
	q := `{ big: link(id: "` + sandbox.LinkLarge + `") { accounts { id } } small: link(id: "` + sandbox.LinkSeed + `") { id ... @defer { accounts { id } } } }`
	parts := readParts(t, postAccept(t, url, q, acceptDefer))
	if len(parts) != 2 {
		t.Fatalf("%d parts, want 2", len(parts))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(heldAtWrite) < 2 || heldAtWrite[0] != 500 {
		t.Errorf("accounts held at each write %v: want 500 while the deferred part is pending", heldAtWrite)
	}
	if a, _ := factory.Gate(); a != 0 {
		t.Errorf("%d accounts still held after the request", a)
	}
	if last := heldAtWrite[len(heldAtWrite)-1]; last != 0 {
		t.Errorf("%d accounts held when the last part was written", last)
	}
}

// TestDeferMiddlewareOutlivesParts: the request's deadline and loaders are
// alive at every part's write: the handler returns only after the last.
func TestDeferMiddlewareOutlivesParts(t *testing.T) {
	var mu sync.Mutex
	var problems []string
	returned := false
	_, h := gatedServer(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second) // as edge.Timeout
			defer cancel()
			inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(&partWriter{ResponseWriter: w, onWrite: func(b []byte) {
					mu.Lock()
					defer mu.Unlock()
					// next holds the loaders' middleware: it has not
					// returned, so the loaders are alive.
					if ctx.Err() != nil || returned {
						problems = append(problems, "a part written after the middleware ended: "+string(b))
					}
				}}, r)
			})
			inner.ServeHTTP(w, r.WithContext(ctx))
			mu.Lock()
			returned = true
			mu.Unlock()
		})
	})
	url := serve(t, h)
	q := `{ links(ids: ["` + sandbox.LinkHousehold + `", "` + sandbox.LinkSeed + `"]) { id ... @defer { accounts { id } } } }`
	parts := readParts(t, postAccept(t, url, q, acceptDefer))
	if len(parts) < 2 {
		t.Fatalf("parts %q", parts)
	}
	if strings.Contains(strings.Join(parts, ""), `"errors"`) {
		t.Errorf("errors in parts %q", parts)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Error(problems)
	}
}
