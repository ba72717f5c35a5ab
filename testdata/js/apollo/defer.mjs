// Runs issue 10's @defer query with Apollo Client 4 (HttpLink and the
// 2022-08-24 defer handler) against the facade at the URL given, and prints
// the final result as JSON on stdout. defer_apollo_test.go runs it.
//
//   node defer.mjs http://127.0.0.1:8080/graphql [link id]
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { Defer20220824Handler } from "@apollo/client/incremental";

const [url, linkId = "mk_eqkWN34UEoa2NxyALG8pcV"] = process.argv.slice(2);
if (!url) {
  console.error("usage: node defer.mjs URL [LINK_ID]");
  process.exit(2);
}

const client = new ApolloClient({
  // POST application/json passes the facade's CSRF prevention; the header
  // is what Apollo's own clients send, and lets any request through.
  link: new HttpLink({ uri: url, headers: { "X-Apollo-Operation-Name": "IssueDefer" } }),
  cache: new InMemoryCache(),
  incrementalHandler: new Defer20220824Handler(),
});

const query = gql`
  query IssueDefer($id: ID!) {
    link(id: $id) {
      id
      ... @defer {
        accounts {
          id
        }
      }
    }
  }
`;

const timer = setTimeout(() => {
  console.error("no complete result within 10 s");
  process.exit(1);
}, 10_000);

const results = [];
const sub = client
  .watchQuery({ query, variables: { id: linkId }, fetchPolicy: "network-only" })
  .subscribe({
    next(result) {
      results.push({ dataState: result.dataState, loading: result.loading });
      if (result.dataState === "complete" && !result.loading) {
        clearTimeout(timer);
        sub.unsubscribe();
        const out = { data: result.data, updates: results };
        if (result.error) out.error = String(result.error);
        console.log(JSON.stringify(out));
        client.stop();
      }
    },
    error(err) {
      clearTimeout(timer);
      console.error("query failed:", err);
      process.exit(1);
    },
  });
