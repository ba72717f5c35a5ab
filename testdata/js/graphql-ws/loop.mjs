// The refresh loop as a frontend runs it with graphql-ws: subscribe to a
// link's events, print {"subscribed":true} once connected, then print each
// event as {"next":…} until one reports COMPLETED (or FAILED), then exit.
// The caller runs refreshIdentity once it sees "subscribed". Usage:
//   node loop.mjs <ws-url> <link-id> [authorization]
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, linkId, authorization = ""] = process.argv.slice(2);
const out = (v) => { process.stdout.write(JSON.stringify(v) + "\n"); };

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: authorization ? { Authorization: authorization } : {},
  retryAttempts: 0,
  lazy: false,
  onNonLazyError: (e) => { out({ error: String(e?.code ?? e) }); process.exit(1); },
});
client.on("connected", () => { setTimeout(() => out({ subscribed: true }), 300); });
client.subscribe(
  {
    query: `subscription($id: ID!) { linkEvents(linkId: $id) { linkId kind product refreshState link { id products { identity { refreshedAt } } accounts { owners { emails { address } } } } } }`,
    variables: { id: linkId },
  },
  {
    next: (v) => {
      out({ next: v });
      const s = v?.data?.linkEvents?.refreshState;
      if (s === "COMPLETED" || s === "FAILED") { client.dispose(); process.exit(0); }
    },
    error: (e) => { out({ error: Array.isArray(e) ? e : String(e?.code ?? e?.message ?? e) }); process.exit(1); },
    complete: () => { out({ complete: true }); process.exit(1); },
  },
);
setTimeout(() => { out({ timeout: true }); process.exit(1); }, 30000);
