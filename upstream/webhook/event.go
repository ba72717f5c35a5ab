package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mkgraph/mkgraph/upstream"
)

// Kind is what a webhook says happened.
type Kind string

// The kinds MoneyKit sends (webhook_event); any other is Unknown, still
// answered 200 and delivered (with Event.RawEvent), so that a new kind
// never makes MoneyKit retry.
const (
	ProductRefresh               Kind = "PRODUCT_REFRESH"                // link.product_refresh
	StateChanged                 Kind = "STATE_CHANGED"                  // link.state_changed
	TransactionsUpdatesAvailable Kind = "TRANSACTIONS_UPDATES_AVAILABLE" // transactions.updates_available
	Unknown                      Kind = "UNKNOWN"
)

// RefreshState is the state of a product refresh (link.product_refresh).
type RefreshState string

// Refresh states; RefreshUnknown for any other value, or another kind.
const (
	RefreshPending    RefreshState = "PENDING"
	RefreshInProgress RefreshState = "IN_PROGRESS"
	RefreshCompleted  RefreshState = "COMPLETED"
	RefreshFailed     RefreshState = "FAILED"
	RefreshUnknown    RefreshState = "UNKNOWN"
)

// Event is one verified webhook.
type Event struct {
	LinkID string
	Kind   Kind
	// Product is the refreshed product (e.g. "identity") of a
	// ProductRefresh, as MoneyKit spells it.
	Product string
	// State is the body's state field verbatim, whatever the kind.
	State string
	// RefreshState is State read as a refresh state (ProductRefresh only;
	// RefreshUnknown otherwise).
	RefreshState RefreshState
	// LinkState is the link's new state of a StateChanged, verbatim
	// (connected, error, …); "" for other kinds.
	LinkState string
	// LinkError is a StateChanged's error (a link error code), verbatim.
	LinkError string
	// ErrorMessage is MoneyKit's error_message, verbatim.
	ErrorMessage string
	// HasHistory is a TransactionsUpdatesAvailable's has_history.
	HasHistory bool
	// OccurredAt is state_changed_at, else webhook_timestamp (UTC; zero
	// when neither is given or readable).
	OccurredAt time.Time
	// IdempotencyKey is webhook_idempotency_key: the same for every
	// delivery of one event.
	IdempotencyKey string
	// RawEvent is webhook_event verbatim (e.g. "link.product_refresh").
	RawEvent string
	// LinkTags are the link's tags.
	LinkTags []string
}

// body is the documented shape of a delivery. Pointers tell absent or null
// from empty; unknown fields are allowed (MoneyKit may add some).
type body struct {
	MajorVersion   *json.Number `json:"webhook_major_version"`
	MinorVersion   *json.Number `json:"webhook_minor_version"`
	IdempotencyKey *string      `json:"webhook_idempotency_key"`
	Timestamp      *string      `json:"webhook_timestamp"`
	LinkID         *string      `json:"link_id"`
	LinkTags       []string     `json:"link_tags"`
	Event          *string      `json:"webhook_event"`
	Product        *string      `json:"product"`
	State          *string      `json:"state"`
	StateChangedAt *string      `json:"state_changed_at"`
	Error          *string      `json:"error"`
	ErrorMessage   *string      `json:"error_message"`
	HasHistory     *bool        `json:"has_history"`
}

// parseEvent checks a (verified) body and returns its event. Its errors
// are fixed texts that never quote the body.
func parseEvent(raw []byte) (Event, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return Event{}, errors.New("the body is not a JSON object")
	}
	var b body
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&b); err != nil {
		return Event{}, errors.New("the body is not JSON of the documented shape")
	}
	if dec.More() {
		return Event{}, errors.New("the body holds more than one JSON value")
	}
	if err := required("webhook_idempotency_key", b.IdempotencyKey, MaxIdempotencyKeyLen); err != nil {
		return Event{}, err
	}
	if err := required("webhook_event", b.Event, MaxEventNameLen); err != nil {
		return Event{}, err
	}
	if b.LinkID == nil {
		return Event{}, errors.New("link_id is missing")
	}
	if err := upstream.ValidateLinkID(*b.LinkID); err != nil {
		return Event{}, errors.New("link_id is not a valid link id")
	}
	for name, p := range map[string]*string{
		"webhook_timestamp": b.Timestamp, "product": b.Product, "state": b.State,
		"state_changed_at": b.StateChangedAt, "error": b.Error,
	} {
		if p != nil && len(*p) > MaxFieldLen {
			return Event{}, fmt.Errorf("%s is longer than %d bytes", name, MaxFieldLen)
		}
	}
	if b.ErrorMessage != nil && len(*b.ErrorMessage) > MaxErrorMessageLen {
		return Event{}, fmt.Errorf("error_message is longer than %d bytes", MaxErrorMessageLen)
	}
	if len(b.LinkTags) > MaxLinkTags {
		return Event{}, fmt.Errorf("link_tags has more than %d tags", MaxLinkTags)
	}
	for _, t := range b.LinkTags {
		if len(t) > MaxFieldLen {
			return Event{}, fmt.Errorf("a link tag is longer than %d bytes", MaxFieldLen)
		}
	}
	for _, n := range []*json.Number{b.MajorVersion, b.MinorVersion} {
		if n != nil {
			if _, err := n.Int64(); err != nil {
				return Event{}, errors.New("a webhook version is not an integer")
			}
		}
	}

	e := Event{
		LinkID:         *b.LinkID,
		IdempotencyKey: *b.IdempotencyKey,
		RawEvent:       *b.Event,
		Product:        deref(b.Product),
		State:          deref(b.State),
		ErrorMessage:   deref(b.ErrorMessage),
		RefreshState:   RefreshUnknown,
		LinkTags:       b.LinkTags,
	}
	e.Kind = kindOf(e.RawEvent)
	if b.MajorVersion != nil {
		if v, _ := b.MajorVersion.Int64(); v != 1 {
			e.Kind = Unknown // a major version this code was not written for
		}
	}
	switch e.Kind {
	case ProductRefresh:
		e.RefreshState = refreshStateOf(e.State)
	case StateChanged:
		e.LinkState = e.State
		e.LinkError = deref(b.Error)
	case TransactionsUpdatesAvailable:
		e.HasHistory = b.HasHistory != nil && *b.HasHistory
	}
	if t, ok := parseTime(deref(b.StateChangedAt)); ok {
		e.OccurredAt = t
	} else if t, ok := parseTime(deref(b.Timestamp)); ok {
		e.OccurredAt = t
	}
	return e, nil
}

// required checks a required string field: present, not empty, at most max
// bytes of UTF-8 without control characters.
func required(name string, p *string, max int) error {
	switch {
	case p == nil:
		return fmt.Errorf("%s is missing", name)
	case *p == "":
		return fmt.Errorf("%s is empty", name)
	case len(*p) > max:
		return fmt.Errorf("%s is longer than %d bytes", name, max)
	case !utf8.ValidString(*p):
		return fmt.Errorf("%s is not UTF-8", name)
	case strings.IndexFunc(*p, unicode.IsControl) >= 0:
		return fmt.Errorf("%s has control characters", name)
	}
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func kindOf(event string) Kind {
	switch event {
	case "link.product_refresh":
		return ProductRefresh
	case "link.state_changed":
		return StateChanged
	case "transactions.updates_available":
		return TransactionsUpdatesAvailable
	}
	return Unknown
}

func refreshStateOf(state string) RefreshState {
	switch strings.ToLower(state) {
	case "pending":
		return RefreshPending
	case "in_progress":
		return RefreshInProgress
	case "completed":
		return RefreshCompleted
	case "failed":
		return RefreshFailed
	}
	return RefreshUnknown
}

// parseTime reads an RFC 3339 time, or one without a zone as UTC (as
// MoneyKit sometimes sends them).
func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true
	}
	if t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC); err == nil {
		return t, true
	}
	return time.Time{}, false
}
