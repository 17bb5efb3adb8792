/**
 * The demo's stand-ins for KARL and its buildout. The app answers /CUSTOMER/
 * with its branch, the revision it was built at and the customer. The skeleton
 * has the same program names as a real buildout (bin/buildout, bin/karlserve,
 * bin/supervisord, bin/supervisorctl), so the default karlstage.ini works as is.
 */
export const SERVER_MJS = `// Sample KARL stand-in: answers /CUSTOMER/ for the customers in etc/instances.ini.
import { createServer } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';

export const APP_VERSION = 'APP_VERSION_PLACEHOLDER';
const port = Number(process.env.KARLSTAGE_PORT);
const branch = process.env.KARLSTAGE_BRANCH;
const read = (f, d) => { try { return readFileSync(f, 'utf8'); } catch { return d; } };
const customers = () => [...read('etc/instances.ini', '').matchAll(/^\\[instance:([a-z0-9-]+)\\]/gm)].map((m) => m[1]);

createServer((req, res) => {
  // What reached the app, for a look from outside: the connection and the headers the proxy set.
  res.setHeader('x-demo-peer', String(req.socket.remotePort));
  res.setHeader('x-demo-host', String(req.headers.host));
  res.setHeader('x-demo-forwarded', \`\${req.headers['x-forwarded-host']} \${req.headers['x-forwarded-for']}\`);
  if (req.method === 'POST') {
    let bytes = 0;
    req.on('data', (d) => (bytes += d.length));
    req.on('end', () => res.end(\`received \${bytes} bytes\\n\`));
    return;
  }
  const customer = (req.url ?? '/').split('/')[1] ?? '';
  const known = customers();
  const revision = read('var/revision', 'unbuilt').trim();
  const prefix = req.headers['x-forwarded-prefix'] ?? '';
  if (!known.includes(customer)) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end(\`branch \${branch}: no customer "\${customer}" here; try \${known.map((c) => prefix + '/' + c + '/').join(' ')}\\n\`);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(\`KARL demo: branch=\${branch} revision=\${revision} customer=\${customer} version=\${APP_VERSION} prefix=\${prefix}\\n\`);
}).listen(port, '127.0.0.1', () => writeFileSync('var/app.ready', String(process.pid)));
`;

export function serverSource(version: string): string {
  return SERVER_MJS.replace('APP_VERSION_PLACEHOLDER', version);
}

/** Scripts of the sample skeleton, by path. */
export const SKELETON: Record<string, string> = {
  'README.txt': 'Sample deployment skeleton (a buildout stand-in) made by "karlstage demo".\n',
  'bin/buildout': `#!/bin/sh
# Sample build: records what it built and how often it ran.
set -e
mkdir -p var
echo "build of \${KARLSTAGE_REVISION:-?} for \${KARLSTAGE_BRANCH}"
if [ -n "\${DEMO_BUILD_SLEEP:-}" ]; then sleep "$DEMO_BUILD_SLEEP"; fi
if [ -f "$KARLSTAGE_SOURCE/FAIL_BUILD" ]; then
  echo "Error: the source asks this build to fail (FAIL_BUILD)" >&2
  exit 3
fi
test -f "$KARLSTAGE_SOURCE/server.mjs" || { echo "no server.mjs in $KARLSTAGE_SOURCE" >&2; exit 4; }
echo "\${KARLSTAGE_REVISION:-?}" > var/revision
echo "\${KARLSTAGE_REVISION:-?}" >> var/builds
`,
  'bin/karlserve': `#!/bin/sh
# Sample migration step: "bin/karlserve evolve --latest".
set -e
mkdir -p var
echo "$* at \${KARLSTAGE_REVISION:-?}" >> var/migrations
`,
  'bin/supervisord': `#!/bin/sh
# Sample start: runs the app in the background and waits until it listens.
set -e
mkdir -p var
echo "start at \${KARLSTAGE_REVISION:-?}" >> var/starts
if [ -f "$KARLSTAGE_SOURCE/FAIL_START" ] || [ -f var/fail-start ]; then
  echo "Error: this start is asked to fail (FAIL_START)" >&2
  exit 5
fi
if [ -f var/slow-start ]; then sleep "$(cat var/slow-start)"; fi
rm -f var/app.ready
nohup node "$KARLSTAGE_SOURCE/server.mjs" >> var/app.log 2>&1 < /dev/null &
echo $! > var/app.pid
i=0
while [ ! -f var/app.ready ]; do
  if ! kill -0 "$(cat var/app.pid)" 2>/dev/null; then echo "the app exited:" >&2; tail -5 var/app.log >&2; exit 1; fi
  i=$((i + 1)); [ $i -lt 100 ] || { echo "the app did not start listening within 10 s" >&2; exit 1; }
  sleep 0.1
done
echo "app of \${KARLSTAGE_BRANCH} listening on 127.0.0.1:\${KARLSTAGE_PORT}"
`,
  'bin/supervisorctl': `#!/bin/sh
# Sample control: "restart all" or "shutdown".
set -e
stop() {
  if [ -f var/app.pid ]; then
    pid=$(cat var/app.pid)
    kill "$pid" 2>/dev/null || true
    i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    rm -f var/app.pid var/app.ready
  fi
}
case "$1" in
  shutdown) stop ;;
  restart) stop; exec "$(dirname "$0")/supervisord" ;;
  *) echo "usage: supervisorctl restart all | shutdown" >&2; exit 2 ;;
esac
`,
};
