// mkgraph's GraphiQL: the page's one script. It reads its configuration from
// the server (data-config on #graphiql: the endpoint, the default tab, the
// worker files) and renders GraphiQL with a fetcher of its own.
import { GraphiQL } from "graphiql";
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

// fetcher POSTs application/json to the facade's endpoint on this origin: a
// Content-Type a browser preflights cross-site, so the facade's CSRF rule
// lets it through. No subscriptions (the facade has none).
async function fetcher(params, opts) {
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
    defaultTabs={[{ query: config.query, headers: config.headers }]}
    shouldPersistHeaders={false}
  />,
);
