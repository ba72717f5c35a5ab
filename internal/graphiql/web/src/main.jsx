// mkgraph's GraphiQL: the page's one script. It reads its configuration from
// the server (data-config on #graphiql: the endpoint, the default tab, the
// worker files) and renders GraphiQL with a fetcher of its own.
import { GraphiQL } from "graphiql";
import { getOperationAST, parse } from "graphql";
import { createClient } from "graphql-ws";
import { createRoot } from "react-dom/client";

import "graphiql/style.css";
import "@graphiql/react/font/roboto.css";
import "@graphiql/react/font/fira-code.css";
import "./page.css";

const root = document.getElementById("graphiql");
const config = JSON.parse(root.dataset.config);

// Monaco runs its language services in workers, built beside this file and
// served from this origin (CSP worker-src 'self').
globalThis.MonacoEnvironment = {
  getWorker(_id, label) {
    const url = config.workers[label] || config.workers.editor;
    return new Worker(url, { name: label });
  },
};

// Subscriptions run over graphql-transport-ws on this origin (ws: or wss:
// as the page was served). The credentials of the Headers tab go in the
// connection_init payload, as the facade reads them; a new client is made
// when they change, so a new token takes effect.
let ws = null;
let wsKey = "";
function wsClient(headers) {
  const params = {};
  for (const [k, v] of Object.entries(headers || {})) {
    if (/^(authorization|x-api-key)$/i.test(k)) params[k] = v;
  }
  const key = JSON.stringify(params);
  if (!ws || key !== wsKey) {
    if (ws) ws.dispose();
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    ws = createClient({ url: scheme + "//" + location.host + config.subscriptions, connectionParams: params, lazy: true });
    wsKey = key;
  }
  return ws;
}

function isSubscription(params) {
  try {
    const op = getOperationAST(parse(params.query), params.operationName || undefined);
    return op && op.operation === "subscription";
  } catch {
    return false; // let the server say what is wrong with the document
  }
}

// fetcher POSTs application/json to the facade's endpoint on this origin: a
// Content-Type a browser preflights cross-site, so the facade's CSRF rule
// lets it through. Subscriptions, when the facade has them, go over the
// WebSocket.
function fetcher(params, opts) {
  if (config.subscriptions && isSubscription(params)) {
    return wsClient(opts && opts.headers).iterate(params);
  }
  return post(params, opts);
}

async function post(params, opts) {
  const response = await fetch(config.endpoint, {
    method: "POST",
    credentials: "same-origin",
    headers: {
      Accept: "application/graphql-response+json, application/json",
      ...(opts && opts.headers),
      "Content-Type": "application/json",
    },
    body: JSON.stringify(params),
  });
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return { errors: [{ message: `HTTP ${response.status}: ${text.slice(0, 500)}` }] };
  }
}

createRoot(root).render(
  <GraphiQL
    fetcher={fetcher}
    defaultQuery={config.query}
    defaultHeaders={config.headers}
    defaultTabs={[{ query: config.query, headers: config.headers }, ...(config.tabs || [])]}
    shouldPersistHeaders={false}
  />,
);
