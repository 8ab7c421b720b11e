// kinesalite bound to 127.0.0.1 only (its cli.js listens on every interface).
// Usage: node kinesalite-lo.cjs PORT   (run from anywhere; resolves kinesalite
// from the repo's node_modules). In-memory store, fast stream state changes.
'use strict';
const path = require('path');
const kinesalite = require(path.join(__dirname, '..', '..', 'node_modules', 'kinesalite'));

const port = Number(process.argv[2] || process.env.PORT || 14567);
const server = kinesalite({
  createStreamMs: 50,   // CREATING -> ACTIVE
  deleteStreamMs: 50,
  updateStreamMs: 50,
  shardLimit: 1000,     // every test file makes its own streams: the whole suite needs more than 50
});
server.listen(port, '127.0.0.1', () => {
  console.log(`kinesalite listening on 127.0.0.1:${port}`);
});
// In-memory store: nothing to flush, exit at once (server.close() would wait
// for the proxy's keep-alive connections).
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
