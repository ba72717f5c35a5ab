package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// auditDir holds the pinned graphql-http package and the script that runs
// its server audit (`make js-deps` installs it).
var auditDir = filepath.Join("testdata", "js", "audit")

// TestGraphQLOverHTTPAudit runs graphql-http's server audit, the reference
// checks of the GraphQL over HTTP spec, against the facade on a loopback
// port, and fails when any MUST or SHOULD fails. Outside CI it is skipped
// when node or the package is missing; on CI (CI=true) it fails then.
func TestGraphQLOverHTTPAudit(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		missingJS(t, "node is not on PATH")
	}
	if _, err := os.Stat(filepath.Join(auditDir, "node_modules", "graphql-http", "package.json")); err != nil {
		missingJS(t, "graphql-http is not installed (run make js-deps)")
	}
	baseURL, _, _ := startServer(t, nil)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(auditDir, "audit.mjs"), baseURL+"/graphql")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	summary := ""
	for line := range strings.SplitSeq(out.String(), "\n") {
		if strings.HasPrefix(line, "graphql-http audit:") {
			summary = line
		}
	}
	t.Log(summary)
	if err != nil || summary == "" {
		t.Fatalf("node audit.mjs: %v\n%s", err, out.String())
	}
	// MAYs may fail (GETs without a CSRF header are refused on purpose);
	// print what they were, for the record.
	if s := strings.TrimSpace(out.String()); s != summary {
		t.Logf("optional (MAY) audits not passed:\n%s", strings.TrimSuffix(s, summary))
	}
}

// missingJS skips the test, or fails it on CI, where the audit must run.
func missingJS(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s; CI must run the GraphQL over HTTP audit", why)
	}
	t.Skipf("%s: the GraphQL over HTTP audit is skipped", why)
}
