package main

import (
	"context"
	"strings"
	"testing"
)

// TestUsageListsCommands: -h names the subcommands, not only the flags.
func TestUsageListsCommands(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		var out strings.Builder
		if err := run(context.Background(), []string{arg}, func(string) string { return "" }, &out); err != nil {
			t.Fatalf("run(%s) = %v, want nil", arg, err)
		}
		text := out.String()
		for _, want := range []string{"mkgraph [flags]", "mkgraph sandbox [flags]", "mkgraph hash-key NAME KEY", "-addr", "MKGRAPH_ADDR", "-cors-headers"} {
			if !strings.Contains(text, want) {
				t.Errorf("run(%s) printed no %q:\n%s", arg, want, text)
			}
		}
	}
	// A bad flag shows the same usage, and is a configuration error.
	var out strings.Builder
	if err := run(context.Background(), []string{"-no-such-flag"}, func(string) string { return "" }, &out); err == nil {
		t.Error("run(-no-such-flag) = nil, want an error")
	}
	if !strings.Contains(out.String(), "mkgraph hash-key NAME KEY") {
		t.Errorf("usage after a bad flag lacks the commands:\n%s", out.String())
	}
}
