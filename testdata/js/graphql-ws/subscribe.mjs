// Subscribes to linkEvents with graphql-ws, as a frontend does, and prints
// one JSON line per outcome: {"accepted":true} once the subscription has
// gone a while without an error, {"next":…} for the first event,
// {"error":…} or {"closed":code} on failure. Usage:
//   node subscribe.mjs <ws-url> <link-id> [authorization] [origin] [wait-ms]
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, linkId, authorization = "", origin = "", waitMs = "1000"] = process.argv.slice(2);
const out = (v) => { process.stdout.write(JSON.stringify(v) + "\n"); };

class OriginWebSocket extends WebSocket {
  constructor(address, protocols) {
    super(address, protocols, origin ? { headers: { Origin: origin } } : {});
  }
}

const client = createClient({
  url,
  webSocketImpl: OriginWebSocket,
  connectionParams: authorization ? { Authorization: authorization } : {},
  retryAttempts: 0,
  lazy: false,
  on: { closed: (e) => { out({ closed: e.code }); process.exit(0); } },
  onNonLazyError: () => {},
});

let timer;
client.subscribe(
  {
    query: `subscription($id: ID!) { linkEvents(linkId: $id) { linkId kind refreshState occurredAt link { id institutionName } } }`,
    variables: { id: linkId },
  },
  {
    next: (v) => { out({ next: v }); client.dispose(); process.exit(0); },
    error: (e) => { out({ error: Array.isArray(e) ? e : String(e.code ?? e.message ?? e) }); process.exit(0); },
    complete: () => { out({ complete: true }); process.exit(0); },
  },
);
client.on("connected", () => {
  timer = setTimeout(() => { out({ accepted: true }); client.dispose(); process.exit(0); }, Number(waitMs));
});
setTimeout(() => { out({ timeout: true }); process.exit(1); }, 20000);
