package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mkgraph/mkgraph/upstream/sandbox"
)

// The loop the issue asks for, through the running facade over its
// embedded sandbox, as three kinds of client would follow it: subscribe to
// the link's events, run refreshIdentity, and receive PENDING, then
// COMPLETED whose link already shows the sandbox's fresh data (the signed
// webhook reached /webhooks/moneykit, the cache was dropped before the
// event was published).

const loopEventSelection = `linkId kind product refreshState link { id products { identity { refreshedAt } } accounts { owners { emails { address } } } }`

// loopEvent is one linkEvents event as the clients receive it.
type loopEvent struct {
	LinkID       string `json:"linkId"`
	Kind         string `json:"kind"`
	Product      string `json:"product"`
	RefreshState string `json:"refreshState"`
	Link         *struct {
		ID       string `json:"id"`
		Accounts []struct {
			Owners []struct {
				Emails []struct {
					Address string `json:"address"`
				} `json:"emails"`
			} `json:"owners"`
		} `json:"accounts"`
	} `json:"link"`
}

func (e loopEvent) hasEmail(addr string) bool {
	if e.Link == nil {
		return false
	}
	for _, a := range e.Link.Accounts {
		for _, o := range a.Owners {
			for _, m := range o.Emails {
				if m.Address == addr {
					return true
				}
			}
		}
	}
	return false
}

// refreshLink runs the refreshIdentity mutation and checks it was accepted.
func refreshLink(t *testing.T, c *http.Client, baseURL, link string) {
	t.Helper()
	r := postGraphQL(t, c, baseURL, gqlRequest{Query: `mutation { refreshIdentity(linkId: "` + link + `") { linkId requestedAt status { lastAttemptedAt } } }`})
	g := decodeGQL(t, r)
	if r.status != http.StatusOK || len(g.Errors) > 0 || !strings.Contains(string(r.body), `"linkId":"`+link+`"`) {
		t.Fatalf("refreshIdentity: %d %s", r.status, r.body)
	}
}

// checkLoop checks the events a client got: PENDING first, COMPLETED last
// with the fresh data.
func checkLoop(t *testing.T, client string, events []loopEvent, link string) {
	t.Helper()
	if len(events) < 2 {
		t.Fatalf("%s: %d events %+v, want PENDING then COMPLETED", client, len(events), events)
	}
	first, last := events[0], events[len(events)-1]
	if first.Kind != "PRODUCT_REFRESH" || first.Product != "IDENTITY" || first.RefreshState != "PENDING" || first.LinkID != link {
		t.Errorf("%s: first event %+v, want PRODUCT_REFRESH IDENTITY PENDING for %s", client, first, link)
	}
	if last.RefreshState != "COMPLETED" || !last.hasEmail("refreshed-1@example.com") {
		t.Errorf("%s: last event %+v, want COMPLETED with the sandbox's new email", client, last)
	}
	if first.hasEmail("refreshed-1@example.com") {
		t.Errorf("%s: the PENDING event already shows the refreshed data", client)
	}
}

func TestRefreshLoopWebSocket(t *testing.T) {
	t.Parallel()
	baseURL, _, _ := startServer(t, nil)
	link := sandbox.LinkCopyPrefix + "loop_ws"
	c, _, err := wsDial(t, baseURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	wsSend(t, c, map[string]any{"type": "connection_init", "payload": map[string]any{}})
	if m, err := wsRead(c, 5*time.Second); err != nil || m["type"] != "connection_ack" {
		t.Fatalf("connection_init: %v %v", m, err)
	}
	wsSend(t, c, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": `subscription($id: ID!) { linkEvents(linkId: $id) { ` + loopEventSelection + ` } }`, "variables": map[string]any{"id": link}}})
	// No read with a short deadline here: coder/websocket closes the
	// connection when a read's context ends. An error for the subscribe
	// would arrive before the first event and fail the loop below.
	time.Sleep(300 * time.Millisecond)
	refreshLink(t, newClient(t), baseURL, link)
	var events []loopEvent
	for len(events) == 0 || events[len(events)-1].RefreshState != "COMPLETED" {
		m, err := wsRead(c, sandbox.DefaultRefreshDelay+10*time.Second)
		if err != nil || m["type"] != "next" {
			t.Fatalf("after %d events: %v %v", len(events), m, err)
		}
		var p struct {
			Data struct {
				LinkEvents loopEvent `json:"linkEvents"`
			} `json:"data"`
			Errors []any `json:"errors"`
		}
		b, _ := json.Marshal(m["payload"])
		if err := json.Unmarshal(b, &p); err != nil || len(p.Errors) > 0 {
			t.Fatalf("event %s: %v", b, err)
		}
		events = append(events, p.Data.LinkEvents)
	}
	checkLoop(t, "graphql-transport-ws", events, link)
}

func TestRefreshLoopSSE(t *testing.T) {
	t.Parallel()
	baseURL, _, _ := startServer(t, nil)
	link := sandbox.LinkCopyPrefix + "loop_sse"
	body, _ := json.Marshal(gqlRequest{Query: `subscription($id: ID!) { linkEvents(linkId: $id) { ` + loopEventSelection + ` } }`, Variables: map[string]any{"id": link}})
	ctx, cancel := context.WithTimeout(context.Background(), sandbox.DefaultRefreshDelay+20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("SSE answer %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	events := make(chan loopEvent, 8)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok || data == "" {
				continue
			}
			var p struct {
				Data struct {
					LinkEvents loopEvent `json:"linkEvents"`
				} `json:"data"`
			}
			if json.Unmarshal([]byte(data), &p) == nil && p.Data.LinkEvents.Kind != "" {
				events <- p.Data.LinkEvents
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // the subscription is made before the stream's first byte is read
	refreshLink(t, newClient(t), baseURL, link)
	var got []loopEvent
	for e := range events {
		if got = append(got, e); e.RefreshState == "COMPLETED" {
			break
		}
	}
	cancel()
	checkLoop(t, "SSE", got, link)
}

// TestRefreshLoopGraphQLWSLibrary: the same loop through the graphql-ws npm
// library, the client frontends use.
func TestRefreshLoopGraphQLWSLibrary(t *testing.T) {
	t.Parallel()
	node := requireNode(t, graphqlWSDir, "graphql-ws")
	baseURL, _, _ := startServer(t, nil)
	link := sandbox.LinkCopyPrefix + "loop_node"
	ctx, cancel := context.WithTimeout(context.Background(), sandbox.DefaultRefreshDelay+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "loop.mjs", "ws"+strings.TrimPrefix(baseURL, "http")+"/graphql", link)
	cmd.Dir = graphqlWSDir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var events []loopEvent
	for sc.Scan() {
		var line struct {
			Subscribed bool `json:"subscribed"`
			Next       *struct {
				Data struct {
					LinkEvents loopEvent `json:"linkEvents"`
				} `json:"data"`
			} `json:"next"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("node printed %q", sc.Text())
		}
		switch {
		case line.Subscribed:
			refreshLink(t, newClient(t), baseURL, link)
		case line.Next != nil:
			events = append(events, line.Next.Data.LinkEvents)
		default:
			t.Fatalf("node: %s", sc.Text())
		}
	}
	checkLoop(t, "graphql-ws (npm)", events, link)
}
