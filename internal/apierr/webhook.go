package apierr

// Codes of the MoneyKit webhook receiver (upstream/webhook), which answers
// MoneyKit, not a GraphQL client: its bodies are {"error_code": …} alone.
const (
	// CodeWebhookInvalid refuses a delivery that cannot be verified or is
	// malformed (HTTP 400), or whose body is over the limit (HTTP 413). It
	// is never retried into success: MoneyKit's retries follow real
	// failures only.
	CodeWebhookInvalid = "facade.webhook_invalid"
	// CodeWebhookUnavailable answers HTTP 503 when a delivery that may be
	// genuine could not be handled for a reason on the facade's side (the
	// signing keys could not be fetched, the event could not be applied):
	// nothing was recorded, so MoneyKit's retry is applied.
	CodeWebhookUnavailable = "facade.webhook_unavailable"
)
