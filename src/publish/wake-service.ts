import { chmod, chown, mkdir, readFile, rm } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { loadConfig, type Config } from '../config/config.js';
import { nameProblem } from '../config/names.js';
import { messageOf } from '../core/errors.js';
import { answersHttp, waitUntilAnswering } from '../core/http-probe.js';
import { liveHolder } from '../core/lock.js';
import type { Command, RunResult } from '../core/command.js';
import { renderTemplate } from '../core/templates.js';
import { noteActivity } from '../model/activity.js';
import { layout } from '../model/layout.js';
import { acquireLock, LOCKS, lockRoom } from '../model/locks.js';
import { wantOf } from '../model/site-state.js';
import { readState, type BranchState } from '../model/state.js';

/**
 * The wake service: nginx sends it a request for a branch site whose app does not answer
 * (`error_page 502 504 = @ks_wake`, templates/nginx.conf), over a unix socket only root and
 * nginx's workers can reach. For a logged-in visitor (nginx's login runs first, and nginx
 * names the user) it starts a sleeping or down site once, however many requests wait, and
 * waits up to [staging] wake_wait: the visitor gets the real page, proxied from the app. A
 * slower start gets a "waking up" page that reloads itself; a site stopped by the operator,
 * or a request without a login, gets a page that says so and wakes nothing.
 */
const BIN = fileURLToPath(new URL('../../bin/karlstage.js', import.meta.url));
const MAX_SOCKET_PATH = 107; // sun_path of Linux, less its terminating NUL

export interface WakeOutcome {
  ok: boolean;
  error?: string;
}

/** How a site is started for a visitor (injected: the start lives with the branch sites). */
export type Starter = (cfg: Config, site: BranchState, user: string) => Promise<WakeOutcome>;

/** A unix socket path must fit sun_path: said before anything listens. */
export function wakeSocketProblem(root: string): string | undefined {
  const path = layout.wakeSocket(root);
  return Buffer.byteLength(path) > MAX_SOCKET_PATH
    ? `the wake service's socket ${path} is longer than ${MAX_SOCKET_PATH} bytes (a unix socket's limit): use a staging root with a shorter path`
    : undefined;
}

const wakeLog = (cfg: Config) => `${layout.logs(cfg.root)}/wake.log`;

/** The service, started in the background: karlstage itself, its output appended to wake.log. */
export const wakeServiceCommand = (cfg: Config): Command => ({
  program: process.execPath,
  args: [BIN, '--config', cfg.file, 'wake-service'],
  step: 'start the wake service',
  // The tests' clean-up finds every process of a staging root by it.
  env: () => ({ KARLSTAGE_ROOT: cfg.root }),
  detached: { log: wakeLog(cfg) },
});

/**
 * Start the service in the background (watch, @reboot) and wait until it holds its lock; `run`
 * runs wakeServiceCommand (the ctx.exec of the step that declared it).
 */
export async function startWakeService(
  cfg: Config,
  run: (c: Command) => Promise<RunResult>,
): Promise<{ ok: boolean; pid?: number; error?: string }> {
  const problem = wakeSocketProblem(cfg.root);
  if (problem) return { ok: false, error: problem };
  const log = wakeLog(cfg);
  await mkdir(layout.logs(cfg.root), { recursive: true });
  const { pid } = await run(wakeServiceCommand(cfg));
  if (!pid) return { ok: false, error: `it did not start (see ${log})` };
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const holder = await liveHolder(lockRoom(cfg.root), LOCKS.wake);
    if (holder) return { ok: true, pid: holder.pid };
    try {
      process.kill(pid, 0);
    } catch {
      const said = (await readFile(log, 'utf8').catch(() => '')).trimEnd().split('\n').at(-1);
      return { ok: false, error: `it exited at once${said ? `: ${said}` : ''} (see ${log})` };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { ok: false, error: `it did not come up within 10 s (see ${log})` };
}

/** The group nginx's workers run as may reach the socket; nobody else (besides root). */
async function openToGroup(path: string, group: string, mode: number): Promise<void> {
  await chmod(path, mode);
  const text = await readFile('/etc/group', 'utf8').catch(() => '');
  const gid = text
    .split('\n')
    .find((l) => l.split(':')[0] === group)
    ?.split(':')[2];
  if (gid !== undefined)
    await chown(path, process.getuid?.() ?? 0, Number(gid)).catch(() => undefined);
}

/** Run the service until SIGTERM: holds the wake-service lock, listens on the socket. */
export async function serveWake(configFile: string, start: Starter): Promise<void> {
  let cfg = loadConfig(configFile);
  const problem = wakeSocketProblem(cfg.root);
  if (problem) throw new Error(problem);
  // One service per staging root: a second one finds the lock held and leaves.
  const release = await acquireLock(cfg.root, LOCKS.wake, { command: 'wake-service' });
  const dir = layout.wakeDir(cfg.root);
  const socket = layout.wakeSocket(cfg.root);
  await mkdir(dir, { recursive: true });
  await openToGroup(dir, cfg.access.group, 0o750);
  await rm(socket, { force: true }); // left by a service that was killed: we hold the lock now
  const waking = new Map<string, Promise<WakeOutcome>>();
  const server = createServer((req, res) => {
    // The configuration is read again for each request: an edit counts without a restart.
    try {
      cfg = loadConfig(configFile);
    } catch (e) {
      say(`configuration refused: ${messageOf(e)}`);
    }
    handle(cfg, req, res, { waking, start }).catch((e: unknown) => {
      say(`error: ${messageOf(e)}`);
      if (!res.headersSent)
        void page(res, 503, {
          title: 'Something went wrong',
          text: 'Please try again in a minute.',
        });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, resolve);
  });
  await openToGroup(socket, cfg.access.group, 0o660);
  say(`listening on ${socket} (pid ${process.pid})`);
  await new Promise<void>((resolve) => {
    const stop = () => server.close(() => resolve());
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await rm(socket, { force: true });
  await release();
}

const say = (text: string) => process.stdout.write(`${new Date().toISOString()} ${text}\n`);

interface Handling {
  waking: Map<string, Promise<WakeOutcome>>;
  start: Starter;
}

async function handle(cfg: Config, req: IncomingMessage, res: ServerResponse, h: Handling) {
  const branch = String(req.headers['x-karlstage-branch'] ?? '');
  // nginx names the user only after its login passed (never for the allow list or a public host).
  const user = String(req.headers['x-karlstage-user'] ?? '');
  const site = nameProblem(branch) ? undefined : (await readState(cfg.root)).branches[branch];
  if (!site)
    return page(res, 404, { title: 'No such branch site', text: 'There is no branch site here.' });
  const customer = /^\/[^/]+\/([a-z][a-z0-9-]*)/.exec(req.url ?? '')?.[1];
  const where = { branch, customer };
  if (await answersHttp(site.port, 500)) return proxy(site, req, res);
  const want = wantOf(site);
  if (want === 'stopped')
    return page(res, 503, {
      ...where,
      title: `${branch} is stopped`,
      text: `The operator stopped this branch site${site.run?.by ? ` (${site.run.by})` : ''}. It starts again when they run "karlstage start ${branch}".`,
    });
  if (!user)
    return page(res, 503, {
      ...where,
      title: `${branch} is ${want === 'sleeping' ? 'asleep' : 'not running'}`,
      text: 'Log in to wake it: only a logged-in visitor starts a branch site.',
    });
  const retryAt = site.run?.retryAt ? Date.parse(site.run.retryAt) : 0;
  if (want === 'running' && retryAt > Date.now())
    return page(res, 503, {
      ...where,
      title: `${branch} is down`,
      text: `It could not be started${site.run?.lastStart?.error ? ` (${site.run.lastStart.error})` : ''}; the operator has been told. It is tried again at ${new Date(retryAt).toISOString().slice(11, 16)} UTC.`,
      retry: Math.max(5, Math.ceil((retryAt - Date.now()) / 1000)),
    });
  // One start for any number of waiting visitors.
  let wake = h.waking.get(branch);
  if (!wake) {
    say(`waking ${branch} for ${user}`);
    wake = h.start(cfg, site, user).finally(() => h.waking.delete(branch));
    h.waking.set(branch, wake);
  }
  const expected = Math.max(2, Math.ceil((site.run?.lastStart?.ms ?? 5000) / 1000));
  // The visitor gets the page as soon as the app answers (its start is recorded meanwhile).
  const answered = waitUntilAnswering(site.port, cfg.staging.wakeWaitMs).then(
    (yes): WakeOutcome | undefined => (yes ? { ok: true } : undefined),
  );
  const outcome = await Promise.race([wake.then((o) => (o.ok ? answered : o)), answered]);
  if (outcome?.ok || (outcome === undefined && (await answersHttp(site.port, 500)))) {
    await noteActivity(cfg.root, branch).catch(() => undefined);
    return proxy(site, req, res);
  }
  if (outcome && !outcome.ok)
    return page(res, 503, {
      ...where,
      title: `${branch} could not be started`,
      text: `${outcome.error ?? 'Its start failed'}. The operator has been told; it is tried again in a minute or two.`,
      retry: 60,
    });
  return page(res, 503, {
    ...where,
    title: `Waking up ${branch}${customer ? ` for ${customer}` : ''}`,
    text: `This branch site was asleep and is starting now; that takes about ${expected} s. This page reloads itself.`,
    retry: Math.min(expected, 10),
  });
}

/** Hop-by-hop headers (RFC 9110 7.6.1) and ours stay here. */
const NOT_PASSED =
  /^(connection|keep-alive|proxy-connection|te|trailer|transfer-encoding|upgrade|x-karlstage-.*)$/i;

/** The real page: the request as nginx would have sent it, to the app that answers now. */
function proxy(site: BranchState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').replace(new RegExp(`^/${site.name}(?=/|$)`), '') || '/';
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers))
    if (v !== undefined && !NOT_PASSED.test(k)) headers[k] = v;
  return new Promise<void>((resolve) => {
    const up = request(
      { host: '127.0.0.1', port: site.port, method: req.method, path, headers },
      (answer) => {
        const back: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(answer.headers))
          if (v !== undefined && !NOT_PASSED.test(k)) back[k] = v;
        res.writeHead(answer.statusCode ?? 502, back);
        answer.pipe(res);
        answer.once('end', resolve);
        answer.once('error', () => resolve());
      },
    );
    up.setTimeout(300_000, () => up.destroy(new Error('no answer')));
    up.once('error', async () => {
      if (!res.headersSent)
        await page(res, 502, {
          title: `${site.name} does not answer`,
          text: 'Please try again in a minute.',
          retry: 30,
        });
      resolve();
    });
    req.pipe(up);
  });
}

export interface PageView {
  title: string;
  text: string;
  branch?: string;
  customer?: string;
  /** Seconds until the page reloads itself (and Retry-After). */
  retry?: number;
}

/** The wake service's own page (waking up, stopped, down…). */
export const wakePage = (view: PageView): Promise<string> =>
  renderTemplate('wake.html', view, 'html');

async function page(res: ServerResponse, status: number, view: PageView): Promise<void> {
  const html = await wakePage(view);
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    ...(view.retry ? { 'retry-after': String(view.retry) } : {}),
  });
  res.end(html);
}
