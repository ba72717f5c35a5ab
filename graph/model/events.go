package model

import (
	"time"

	"github.com/mkgraph/mkgraph/internal/linkevents"
	"github.com/mkgraph/mkgraph/upstream"
)

// LinkEvent is one link event (Subscription.linkEvents); its link is a
// resolver, read per event.
type LinkEvent struct {
	LinkID       string
	Kind         LinkEventKind
	Product      *Product
	RefreshState *RefreshState
	LinkState    *LinkState
	ErrorMessage *string
	OccurredAt   time.Time
}

// NewLinkEvent converts a bus event. Values the schema does not know never
// fail: an unknown kind, refresh state or link state is UNKNOWN, an unknown
// product is null, and each is reported to warn.
func NewLinkEvent(e linkevents.Event, warn Warner) *LinkEvent {
	if warn == nil {
		warn = func(string, string) {}
	}
	out := &LinkEvent{LinkID: e.LinkID, Kind: LinkEventKind(e.Kind), OccurredAt: e.OccurredAt.UTC()}
	if !out.Kind.IsValid() {
		warn("link_event.kind", e.Kind)
		out.Kind = LinkEventKindUnknown
	}
	if e.Product != "" {
		if p, ok := products[e.Product]; ok {
			out.Product = &p
		} else {
			warn("link_event.product", e.Product)
		}
	}
	if e.RefreshState != "" {
		s := RefreshState(e.RefreshState)
		if !s.IsValid() {
			warn("link_event.refresh_state", e.RefreshState)
			s = RefreshStateUnknown
		}
		out.RefreshState = &s
	}
	if e.LinkState != "" {
		s, ok := linkStates[e.LinkState]
		if !ok {
			warn("link.state", e.LinkState)
			s = LinkStateUnknown
		}
		out.LinkState = &s
	}
	if e.ErrorMessage != "" {
		m := e.ErrorMessage
		out.ErrorMessage = &m
	}
	return out
}

// NewProductStatus converts one product's status (nil stays nil), as NewLink
// does for a link's products.
func NewProductStatus(s *upstream.ProductStatus, warn Warner) *ProductStatus {
	if s == nil {
		return nil
	}
	if warn == nil {
		warn = func(string, string) {}
	}
	return newProductStatus(s, warn)
}
