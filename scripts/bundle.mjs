#!/usr/bin/env node
// The program bin/karlstage.js runs: dist/cli.js (tsc's output) and the packages it uses every
// day, in one CommonJS file. cron starts `karlstage poll` every few minutes and nearly always
// nothing is new, so start-up is most of its cost: Node 20 loads one CommonJS file much faster
// than ~100 ES modules (execa alone is ~60 files), and has no compile cache to make up for it.
// bench/poll.mjs measures the result side by side with a bare `node -e 0`.
//
// The bundle lives in dist/bundle/, two folders below the package like dist/core/, so that paths
// the code finds from its own location (templates/, bin/) are the same in both.
import { execFileSync } from 'node:child_process';
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

// V8's code cache of the bundle, for bin/load-bundle.js: the bundle compiled and its top level
// run (what every start runs), in a node of its own, then written next to it with the
// bundle's SHA-256 in front (a cache of another bundle is never used).
const makeCache = `
const l = require('./bin/load-bundle.js');
const fs = require('node:fs');
if (l.LOADER) {
  const source = fs.readFileSync(l.BUNDLE, 'utf8');
  const script = l.compile(source);
  l.run(script);
  fs.writeFileSync(l.CACHE + '.new', Buffer.concat([l.digest(source), script.createCachedData()]));
  fs.renameSync(l.CACHE + '.new', l.CACHE);
}`;
execFileSync(process.execPath, ['-e', makeCache], { cwd: root, stdio: 'inherit' });
