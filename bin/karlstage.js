#!/usr/bin/env node
// Thin launcher: everything else is in src/cli.ts, built to dist/ and bundled into one file
// (scripts/bundle.mjs says why). CommonJS, as bin/package.json says: it starts faster.
'use strict';
const { main } = require('../dist/bundle/karlstage.cjs');

main(process.argv).then((code) => {
  process.exitCode = code;
});
