package graph_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGraphQLWSLibraryGetsEvent: the graphql-ws npm library (the root's
// testdata/js/graphql-ws) subscribes with connectionParams {Authorization}
// and prints the first event, published here to the Local bus, with its
// link. On CI a missing node or node_modules fails the test.
func TestGraphQLWSLibraryGetsEvent(t *testing.T) {
	dir := filepath.Join("..", "testdata", "js", "graphql-ws")
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "graphql-ws", "package.json"))
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node and %s/node_modules are needed (make js-deps): %v", dir, err)
		}
		t.Skipf("node or %s/node_modules missing (make js-deps): %v", dir, err)
	}
	s := newSubsServer(t, subsOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "subscribe.mjs", "ws"+strings.TrimPrefix(s.url, "http")+"/graphql", okLink, "Bearer user", "", "60000")
	cmd.Dir = dir
	done := make(chan struct{})
	var out []byte
	go func() { defer close(done); out, err = cmd.Output() }()
	s.waitSubscribers(t, 1)
	s.bus.Publish(context.Background(), refreshEvent)
	<-done
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	got := string(out)
	if !strings.Contains(got, `"next"`) || !strings.Contains(got, `"kind":"PRODUCT_REFRESH"`) || !strings.Contains(got, `"institutionName":"Chase"`) {
		t.Fatalf("node printed %s", got)
	}
}
