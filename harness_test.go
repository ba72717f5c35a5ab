//go:build soak || load

package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Helpers shared by the soak (soak_test.go) and load (load_test.go) runs,
// which build only with their tags.

// writeMarked replaces what stands between the begin and end markers of the
// file at path with table, appending the markers when they are missing.
func writeMarked(path, beginMark, endMark, table string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := string(old)
	begin := strings.Index(doc, beginMark)
	end := strings.Index(doc, endMark)
	if begin < 0 || end < begin {
		doc = strings.TrimRight(doc, "\n") + "\n\n" + beginMark + "\n" + endMark + "\n"
		begin, end = strings.Index(doc, beginMark), strings.Index(doc, endMark)
	}
	doc = doc[:begin+len(beginMark)] + "\n" + table + doc[end:]
	return os.WriteFile(path, []byte(doc), 0o644)
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// envInt reads a positive integer knob, or def when unset.
func envInt(t *testing.T, key string, def int) int {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", key, v)
	}
	return n
}

// envDuration reads a positive duration knob, or def when unset.
func envDuration(t *testing.T, key string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration", key, v)
	}
	return d
}
