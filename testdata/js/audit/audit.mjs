// Runs graphql-http's server audit (the GraphQL over HTTP spec's MUST, SHOULD
// and MAY checks) against a running server:
//
//	node testdata/js/audit/audit.mjs http://127.0.0.1:8080/graphql
//
// It prints one line per audit that did not pass, then a summary line
// ("graphql-http audit: MUST 13/13, SHOULD 23/23, MAY …"), and exits 1 when
// any MUST or SHOULD failed (MAYs are reported, never fatal), 2 on misuse or
// a fatal error (the server could not be reached). audit_test.go runs it
// from `make test`.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <graphql endpoint URL>');
  process.exit(2);
}

let results;
try {
  results = await auditServer({ url });
} catch (err) {
  console.error(`graphql-http audit: fatal: ${err && err.message ? err.message : err}`);
  process.exit(2);
}

const levels = ['MUST', 'SHOULD', 'MAY'];
const count = Object.fromEntries(levels.map((l) => [l, { ok: 0, all: 0 }]));
for (const r of results) {
  const level = levels.find((l) => r.name.startsWith(l + ' '));
  count[level].all++;
  if (r.status === 'ok') {
    count[level].ok++;
    continue;
  }
  // The reason and status only: never the body (it could echo input).
  const status = r.response ? ` (HTTP ${r.response.status})` : '';
  console.log(`${r.status.toUpperCase()} ${r.id} ${r.name}: ${r.reason}${status}`);
}

const part = (l) => `${l} ${count[l].ok}/${count[l].all}`;
console.log(`graphql-http audit: ${levels.map(part).join(', ')}`);
const failed = ['MUST', 'SHOULD'].some((l) => count[l].ok !== count[l].all);
process.exit(failed ? 1 : 0);
