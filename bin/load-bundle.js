// Loads dist/bundle/karlstage.cjs, from V8's code cache of it when there is one made for this
// very bundle (scripts/bundle.mjs makes it at build time, next to the bundle; nothing writes
// it at run time). Compiling the 750 KB bundle is most of what a start costs beyond node's
// own (about 30 ms of a `poll` with nothing new); the cache saves most of it. A cache of
// another bundle (checked by its SHA-256), another node (V8 rejects it) or none: the bundle is
// compiled as usual, by require.
'use strict';
const { createHash } = require('node:crypto');
const { readFileSync } = require('node:fs');
const Module = require('node:module');
const { dirname, join } = require('node:path');
const vm = require('node:vm');

const BUNDLE = join(__dirname, '..', 'dist', 'bundle', 'karlstage.cjs');
const CACHE = join(__dirname, '..', 'dist', 'bundle', 'karlstage.cache');
// Dynamic import() (of chalk, listr2, …) from a vm.Script needs node's own loader: 20.12 and later.
const LOADER = vm.constants && vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER;

const digest = (source) => createHash('sha256').update(source).digest();

/** The bundle compiled as a CommonJS module's function, from `cachedData` if V8 takes it. */
function compile(source, cachedData) {
  return new vm.Script(Module.wrap(source), {
    filename: BUNDLE,
    cachedData,
    importModuleDynamically: LOADER,
  });
}

/** Runs a compiled bundle as the module it is; its exports. */
function run(script) {
  const module = new Module(BUNDLE, null);
  module.filename = BUNDLE;
  module.paths = Module._nodeModulePaths(dirname(BUNDLE));
  script.runInThisContext()(
    module.exports,
    Module.createRequire(BUNDLE),
    module,
    BUNDLE,
    dirname(BUNDLE),
  );
  module.loaded = true;
  return module.exports;
}

function loadBundle() {
  if (!LOADER) return require(BUNDLE);
  let cache;
  try {
    cache = readFileSync(CACHE);
  } catch {
    return require(BUNDLE);
  }
  const source = readFileSync(BUNDLE, 'utf8');
  if (!digest(source).equals(cache.subarray(0, 32))) return require(BUNDLE);
  const script = compile(source, cache.subarray(32));
  return script.cachedDataRejected ? require(BUNDLE) : run(script);
}

module.exports = { BUNDLE, CACHE, LOADER, compile, digest, loadBundle, run };
