import { spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { makeGitSample, makeSvnSample, type SampleRepo } from '../../src/demo/sample-repos.js';
import { freeBasePort } from '../../src/demo/ports.js';
import { onCleanup, tempDir } from './tmp.js';

/** A real git repository: a bare remote with main, feature-x, tag v1.0, and a clone to commit from. */
export async function gitRepo(): Promise<SampleRepo & { dir: string }> {
  const dir = await tempDir('ks-git-');
  return { ...(await makeGitSample(dir)), dir };
}

/** A real svn repository (svnadmin create) with trunk, branches/feature-x, tags/v1.0; file:// URL. */
export async function svnRepo(): Promise<SampleRepo & { dir: string }> {
  const dir = await tempDir('ks-svn-');
  return { ...(await makeSvnSample(dir)), dir };
}

function waitForPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = createConnection({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listens on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** The svn repository served by a real svnserve on 127.0.0.1; stop() ends it (for outage tests). */
export async function svnServe(
  repo: SampleRepo & { dir: string },
): Promise<{ url: string; port: number; stop(): Promise<void> }> {
  const port = (await freeBasePort(1)) + 1;
  const child = spawn(
    'svnserve',
    [
      '--daemon',
      '--foreground',
      '--root',
      repo.dir,
      '--listen-host',
      '127.0.0.1',
      '--listen-port',
      String(port),
    ],
    { stdio: 'ignore' },
  );
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
  onCleanup(stop);
  await waitForPort(port, 5000);
  return { url: `svn://127.0.0.1:${port}/${join('svnrepo')}`, port, stop };
}
