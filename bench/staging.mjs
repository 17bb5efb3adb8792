// Shared by the benchmarks: a staging root made by `karlstage init`, adjusted for a machine with
// no nginx (routes manual) and, unless a database is given, no PostgreSQL (databases not managed).
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'dist');
const { freeBasePort } = await import(join(dist, 'demo', 'ports.js'));
const { init } = await import(join(dist, 'commands', 'init.js'));
const { makeGitSample, makeSkeleton } = await import(join(dist, 'demo', 'sample-repos.js'));

/**
 * opts: { root, vcs, url, skeleton, defaultRef, sites, database?, drop?: keys whose lines are
 * removed (e.g. ['start', 'stop']), set?: { key: value } lines replaced }. Returns the config file.
 */
export async function benchStagingRoot(opts) {
  const { file } = await init({
    quiet: true,
    dir: opts.root,
    vcs: opts.vcs,
    url: opts.url,
    skeleton: opts.skeleton,
    defaultRef: opts.defaultRef,
    basePort: await freeBasePort(opts.sites),
    ...(opts.database ? { database: opts.database } : {}),
  });
  let text = (await readFile(file, 'utf8')).replace('routes = auto', 'routes = manual');
  if (!opts.database) text = text.replace('manage_databases = yes', 'manage_databases = no');
  for (const key of opts.drop ?? []) text = text.replace(new RegExp(`^${key} = .*$`, 'gm'), '');
  for (const [key, value] of Object.entries(opts.set ?? {}))
    text = text.replace(new RegExp(`^${key} =.*$`, 'm'), `${key} = ${value}`);
  await writeFile(file, text);
  return file;
}

/**
 * The common case: a sample git repository and skeleton in `dir`, and a staging root in
 * dir/staging. opts: as benchStagingRoot, without root/vcs/url/skeleton/defaultRef.
 * Returns { file, root, repo }.
 */
export async function benchGitStaging(dir, opts) {
  const repo = await makeGitSample(join(dir, 'repos'));
  const skeleton = await makeSkeleton(join(dir, 'skeleton'));
  const root = join(dir, 'staging');
  const file = await benchStagingRoot({
    ...opts,
    root,
    vcs: 'git',
    url: repo.url,
    skeleton,
    defaultRef: 'main',
  });
  return { file, root, repo };
}

/**
 * A staging root behind a real nginx as its one TLS host (a self-signed certificate for `host`),
 * routes auto: what bench/sites and bench/tls measure through. Returns { nginx, file, root, repo };
 * the caller stops nginx.
 */
export async function benchTlsStaging(dir, { host, sites }) {
  const { startNginx, selfSignedCert } = await import(join(dist, 'demo', 'web-server.js'));
  const nginx = await startNginx(join(dir, 'nginx'));
  try {
    const { cert, key } = await selfSignedCert(join(dir, 'tls'), host);
    const staging = await benchGitStaging(dir, {
      sites,
      set: {
        routes: 'auto',
        tls_certificate: cert,
        tls_key: key,
        https_port: nginx.httpsPort,
        http_port: nginx.httpPort,
        nginx_conf: nginx.conf,
        reload: nginx.reload,
        listen_addresses: nginx.address,
        group: nginx.workers.group,
      },
    });
    return { nginx, ...staging };
  } catch (e) {
    await nginx.stop();
    throw e;
  }
}

/**
 * The built karlstage run in `root` with `args`: { child, done }, done resolving to its exit
 * code and its stdout and stderr together (a benchmark shows them when it fails).
 */
export function spawnKarlstage(root, args) {
  const child = spawn(process.execPath, [join(dist, '..', 'bin', 'karlstage.js'), ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const done = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out }));
  });
  return { child, done };
}
