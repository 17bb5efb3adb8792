#!/usr/bin/env node
// The program bin/karlstage.js runs: dist/cli.js (tsc's output) and the packages it uses every
// day, in one CommonJS file. cron starts `karlstage poll` every few minutes and nearly always
// nothing is new, so start-up is most of its cost: Node 20 loads one CommonJS file much faster
// than ~100 ES modules (execa alone is ~60 files), and has no compile cache to make up for it.
// bench/poll.mjs measures the result side by side with a bare `node -e 0`.
//
// The bundle lives in dist/bundle/, two folders below the package like dist/core/, so that paths
// the code finds from its own location (templates/, bin/) are the same in both.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

await build({
  absWorkingDir: root,
  entryPoints: ['dist/cli.js'],
  outfile: 'dist/bundle/karlstage.cjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // Big and used by few commands (mail, notifications, the progress display, colours on a
  // terminal, the demo's git client): loaded from node_modules when a command needs them.
  external: ['nodemailer', 'postal-mime', 'listr2', 'simple-git', 'chalk'],
  // ES module code asks import.meta.url where it is; in the bundle, that is the bundle.
  define: { 'import.meta.url': '__karlstageBundleUrl' },
  banner: {
    js: "const __karlstageBundleUrl = require('node:url').pathToFileURL(__filename).href;",
  },
  logLevel: 'warning',
});
