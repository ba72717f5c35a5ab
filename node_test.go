package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// requireNode returns the path of node, once the npm package pkg is
// installed in dir/node_modules (make js-deps installs it from dir's
// lockfile). Without either the test fails on CI (CI=true: make test must
// run it) and is skipped elsewhere, saying why.
func requireNode(t *testing.T, dir, pkg string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json"))
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node and %s in %s/node_modules are needed (make js-deps): %v", pkg, dir, err)
		}
		t.Skipf("node or %s in %s/node_modules missing (make js-deps): %v", pkg, dir, err)
	}
	return node
}
