package main

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mkgraph/mkgraph/internal/testing/redistest"
	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// TestConfigLogMasksURLPassword: a password in MONEYKIT_BASE_URL is a
// credential like MONEYKIT_CLIENT_SECRET.
func TestConfigLogMasksURLPassword(t *testing.T) {
	const password = "pa55w0rd-XYZ"
	upstreamURL, err := url.Parse(startUpstream(t, sandbox.New(sandbox.Options{})))
	if err != nil {
		t.Fatal(err)
	}
	upstreamURL.User = url.UserPassword("user", password)
	_, logs, _ := startServer(t, map[string]string{
		"MONEYKIT_BASE_URL":      upstreamURL.String(),
		"MONEYKIT_CLIENT_ID":     sandbox.DefaultClientID,
		"MONEYKIT_CLIENT_SECRET": sandbox.DefaultClientSecret,
	})
	if strings.Contains(logs.String(), password) {
		t.Errorf("the log holds the password of MONEYKIT_BASE_URL:\n%s", logs)
	}
}

// TestConfigLogMasksRedisSecrets: the Redis password and the encryption
// key never reach the log, even at debug level.
func TestConfigLogMasksRedisSecrets(t *testing.T) {
	const password, key = "redis-PW-4567", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	u, err := url.Parse(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("", password) // refused by a Redis without auth: a warning, still no password
	_, logs, _ := startServer(t, map[string]string{
		"MKGRAPH_REDIS_URL":            u.String(),
		"MKGRAPH_REDIS_ENCRYPTION_KEY": key,
		"MKGRAPH_LOG_LEVEL":            "debug",
	})
	for _, s := range []string{password, key, key[:20]} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the log holds %q:\n%s", s, logs)
		}
	}
	if !strings.Contains(logs.String(), `"MKGRAPH_REDIS_ENCRYPTION_KEY_SET":true`) {
		t.Errorf("the configuration line does not say the key is set:\n%s", logs)
	}
}

func TestConfigErrors(t *testing.T) {
	creds := map[string]string{"MONEYKIT_CLIENT_ID": "id", "MONEYKIT_CLIENT_SECRET": "secret"}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // in the message
	}{
		{name: "log format", env: map[string]string{"MKGRAPH_LOG_FORMAT": "xml"}, want: "MKGRAPH_LOG_FORMAT"},
		{name: "log level", env: map[string]string{"MKGRAPH_LOG_LEVEL": "loud"}, want: "MKGRAPH_LOG_LEVEL"},
		{name: "upstream timeout", env: map[string]string{"MKGRAPH_UPSTREAM_TIMEOUT": "abc"}, want: "MKGRAPH_UPSTREAM_TIMEOUT"},
		{name: "negative timeout", env: map[string]string{"MKGRAPH_REQUEST_TIMEOUT": "-1s"}, want: "MKGRAPH_REQUEST_TIMEOUT"},
		{name: "upstream concurrency", env: map[string]string{"MKGRAPH_UPSTREAM_CONCURRENCY": "0"}, want: "MKGRAPH_UPSTREAM_CONCURRENCY"},
		{name: "max body bytes", env: map[string]string{"MKGRAPH_MAX_BODY_BYTES": "-5"}, want: "MKGRAPH_MAX_BODY_BYTES"},
		{name: "boolean", env: map[string]string{"MKGRAPH_INTROSPECTION": "maybe"}, want: "MKGRAPH_INTROSPECTION"},
		{name: "base URL without credentials", env: map[string]string{"MONEYKIT_BASE_URL": "http://127.0.0.1:1"}, want: "MONEYKIT_CLIENT_SECRET"},
		{name: "base URL with id only", env: map[string]string{"MONEYKIT_BASE_URL": "http://127.0.0.1:1", "MONEYKIT_CLIENT_ID": "id"}, want: "MONEYKIT_CLIENT_SECRET"},
		{name: "secret only", env: map[string]string{"MONEYKIT_CLIENT_SECRET": "secret"}, want: "MONEYKIT_CLIENT_ID"},
		{name: "ftp base URL", env: merge(creds, map[string]string{"MONEYKIT_BASE_URL": "ftp://x"}), want: "MONEYKIT_BASE_URL"},
		{name: "base URL with query", env: merge(creds, map[string]string{"MONEYKIT_BASE_URL": "https://api.example.com/?a=1"}), want: "MONEYKIT_BASE_URL"},
		{name: "address", env: map[string]string{"MKGRAPH_ADDR": "256.0.0.1:99999"}, want: "MKGRAPH_ADDR"},
		{name: "redis URL", env: map[string]string{"MKGRAPH_REDIS_URL": "http://127.0.0.1:6379"}, want: "MKGRAPH_REDIS_URL"},
		{name: "redis key too short", env: map[string]string{"MKGRAPH_REDIS_ENCRYPTION_KEY": "c2hvcnQ="}, want: "MKGRAPH_REDIS_ENCRYPTION_KEY"},
		{name: "redis timeout", env: map[string]string{"MKGRAPH_REDIS_TIMEOUT": "0s"}, want: "MKGRAPH_REDIS_TIMEOUT"},
		{name: "unknown flag", args: []string{"-no-such-flag"}, want: "no-such-flag"},
		{name: "bad flag value", args: []string{"-log-level", "loud"}, want: "log-level"},
		{name: "positional argument", args: []string{"serve"}, want: "serve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := merge(map[string]string{"MKGRAPH_ADDR": "127.0.0.1:0"}, tt.env)
			_, err := runOnce(tt.args, env)
			var ce *configError
			if !errors.As(err, &ce) {
				t.Fatalf("run(%q, %v) = %v (%T), want a *configError", tt.args, tt.env, err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q, %v) = %q, want a message naming %s", tt.args, tt.env, err, tt.want)
			}
		})
	}

	// The same runner accepts a good configuration, so the cases above can fail.
	if out, err := runOnce(nil, map[string]string{"MKGRAPH_ADDR": "127.0.0.1:0"}); err != nil {
		t.Errorf("run with a good configuration = %v; output:\n%s", err, out)
	}
}

func TestConfigErrorMasksSecret(t *testing.T) {
	const secret = "s3cr3t-VALUE-xyz"
	tests := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{name: "bad base URL", env: map[string]string{"MONEYKIT_BASE_URL": "ftp://x", "MONEYKIT_CLIENT_ID": "id", "MONEYKIT_CLIENT_SECRET": secret}},
		{name: "secret without id", env: map[string]string{"MONEYKIT_BASE_URL": "https://api.example.com", "MONEYKIT_CLIENT_SECRET": secret}},
		{name: "other bad setting", env: map[string]string{"MONEYKIT_CLIENT_ID": "id", "MONEYKIT_CLIENT_SECRET": secret, "MKGRAPH_LOG_LEVEL": "loud"}},
		{name: "secret flag and unknown flag", args: []string{"-moneykit-client-id", "id", "-moneykit-client-secret", secret, "-no-such-flag"}},
		{name: "password in base URL", env: map[string]string{"MONEYKIT_BASE_URL": "https://user:" + secret + "@api.example.com/?a=1", "MONEYKIT_CLIENT_ID": "id", "MONEYKIT_CLIENT_SECRET": "other"}},
		{name: "password in a bad Redis URL", env: map[string]string{"MKGRAPH_REDIS_URL": "redis://:" + secret + "@[::1"}},
		{name: "bad Redis encryption key", env: map[string]string{"MKGRAPH_REDIS_ENCRYPTION_KEY": secret}},
		{name: "good Redis key, other bad setting", env: map[string]string{"MKGRAPH_REDIS_ENCRYPTION_KEY": secret + "-0123456789abcdefghijklm=", "MKGRAPH_LOG_LEVEL": "loud"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := merge(map[string]string{"MKGRAPH_ADDR": "127.0.0.1:0"}, tt.env)
			out, err := runOnce(tt.args, env)
			if !errors.As(err, new(*configError)) {
				t.Fatalf("run = %v, want a *configError", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error %q holds the secret", err)
			}
			if strings.Contains(out, secret) {
				t.Errorf("the output holds the secret:\n%s", out)
			}
		})
	}
}

func TestFlagsOverrideEnv(t *testing.T) {
	threeIDs := gqlRequest{Query: `{ links(ids: ["` + sandbox.LinkSeed + `", "` + sandbox.LinkSeed + `", "` + sandbox.LinkSparse + `"]) { id } }`}
	env := map[string]string{"MKGRAPH_MAX_LINK_IDS": "5"}
	c := newClient(t)

	envOnly, _, _ := startServer(t, env)
	if g := decodeGQL(t, postGraphQL(t, c, envOnly, threeIDs)); len(g.Errors) > 0 {
		t.Errorf("MKGRAPH_MAX_LINK_IDS=5, 3 ids: errors %v, want none", g.errorCodes())
	}

	flagged, logs, _ := startServer(t, env, "-max-link-ids", "2")
	g := decodeGQL(t, postGraphQL(t, c, flagged, threeIDs))
	if diff := cmp.Diff([]string{"facade.too_many_link_ids"}, g.errorCodes()); diff != "" {
		t.Errorf("MKGRAPH_MAX_LINK_IDS=5 -max-link-ids 2, 3 ids: error codes mismatch (-want +got):\n%s", diff)
	}
	if f, _ := logs.find(message("configuration")); f["MKGRAPH_MAX_LINK_IDS"] != "2" {
		t.Errorf("configuration MKGRAPH_MAX_LINK_IDS = %v, want 2", f["MKGRAPH_MAX_LINK_IDS"])
	}
}

// TestMainExitStatus re-executes the test binary to call main() with a
// configuration from the environment and checks its exit status.
func TestMainExitStatus(t *testing.T) {
	if os.Getenv(callMainEnv) == "1" {
		args := []string{os.Args[0]}
		if extra := os.Getenv(callMainEnv + "_ARGS"); extra != "" {
			args = append(args, strings.Fields(extra)...)
		}
		os.Args = args
		main()
		return
	}
	tests := []struct {
		name     string
		env      []string
		want     int
		inStderr string
	}{
		{"bad config", []string{"MKGRAPH_LOG_FORMAT=xml"}, 2, "MKGRAPH_LOG_FORMAT"},
		{"unknown flag", []string{callMainEnv + "_ARGS=-no-such-flag"}, 2, "no-such-flag"},
		{"help", []string{callMainEnv + "_ARGS=-h"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMainExitStatus$", "-test.count=1")
			cmd.Env = append(os.Environ(), append([]string{
				callMainEnv + "=1",
				"MKGRAPH_ADDR=127.0.0.1:0",
				// A race-enabled binary otherwise sleeps 1s before a clean exit.
				"GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"),
			}, tt.env...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.want {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, tt.want, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.inStderr) {
				t.Errorf("stderr %q does not name %s", stderr.String(), tt.inStderr)
			}
		})
	}
}
