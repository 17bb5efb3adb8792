import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gitClient } from './git-client.js';
import { exec } from '../core/command.js';
import { serverSource, SKELETON } from './sample-app.js';

/** A sample application repository the demo and the tests can commit to. */
export interface SampleRepo {
  vcs: 'git' | 'svn';
  /** git: clone URL; svn: repository root. */
  url: string;
  defaultRef: string;
  /** A second line of development: git branch feature-x, svn branches/feature-x. */
  featureRef: string;
  commit(ref: string, files: Record<string, string | null>, message: string): Promise<string>;
}

async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
}

export async function makeSkeleton(dir: string): Promise<string> {
  await writeFiles(dir, SKELETON);
  for (const path of Object.keys(SKELETON))
    if (path.startsWith('bin/')) await chmod(join(dir, path), 0o755);
  return dir;
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Karl Demo',
  GIT_AUTHOR_EMAIL: 'demo@example.org',
  GIT_COMMITTER_NAME: 'Karl Demo',
  GIT_COMMITTER_EMAIL: 'demo@example.org',
};

/** A bare git repository (the "remote") with main, feature-x and tag v1.0, and a work clone to commit from. */
export async function makeGitSample(dir: string): Promise<SampleRepo> {
  const bare = join(dir, 'app.git');
  const work = join(dir, 'app-work');
  await mkdir(bare, { recursive: true });
  await mkdir(work, { recursive: true });
  await gitClient(bare, undefined, GIT_ENV).raw(['init', '-q', '--bare', '--initial-branch=main']);
  const g = gitClient(work, undefined, GIT_ENV);
  await g.raw(['init', '-q', '--initial-branch=main']);
  await g.raw(['remote', 'add', 'origin', bare]);
  const url = pathToFileURL(bare).href;

  const commit = async (ref: string, files: Record<string, string | null>, message: string) => {
    await g.raw(['fetch', '-q', 'origin']);
    const remote = (await g.raw(['ls-remote', 'origin', `refs/heads/${ref}`])).trim();
    if (remote) await g.raw(['checkout', '-q', '-B', ref, `origin/${ref}`]);
    else await g.raw(['checkout', '-q', '-B', ref]);
    for (const [path, text] of Object.entries(files)) {
      if (text === null) await g.raw(['rm', '-q', '--', path]);
      else {
        await writeFiles(work, { [path]: text });
        await g.raw(['add', '--', path]);
      }
    }
    await g.raw(['commit', '-q', '-m', message]);
    await g.raw(['push', '-q', 'origin', `${ref}:refs/heads/${ref}`]);
    return (await g.raw(['rev-parse', 'HEAD'])).trim();
  };

  await commit(
    'main',
    { 'server.mjs': serverSource('1.0'), 'README.txt': 'Sample KARL stand-in.\n' },
    'Sample app 1.0',
  );
  await g.raw(['tag', 'v1.0']);
  await g.raw(['push', '-q', 'origin', 'v1.0']);
  await commit('feature-x', { 'server.mjs': serverSource('1.1-feature-x') }, 'Feature X');
  await g.raw(['checkout', '-q', 'main']);
  return { vcs: 'git', url, defaultRef: 'main', featureRef: 'feature-x', commit };
}

/** An svn repository with trunk, branches/feature-x and tags/v1.0, and a way to commit to any of them. */
export async function makeSvnSample(dir: string): Promise<SampleRepo> {
  const repo = join(dir, 'svnrepo');
  const work = join(dir, 'svn-work');
  await mkdir(dir, { recursive: true });
  await exec({ program: 'svnadmin', args: ['create', repo], step: 'svnadmin create' });
  const url = pathToFileURL(repo).href;
  const svn = (args: string[]) =>
    exec({
      program: 'svn',
      args: ['--non-interactive', ...args],
      step: 'svn',
      env: () => ({ LC_ALL: 'C' }),
    });
  await svn([
    'mkdir',
    '-q',
    '--parents',
    '-m',
    'Layout',
    `${url}/trunk`,
    `${url}/branches`,
    `${url}/tags`,
  ]);

  const commit = async (ref: string, files: Record<string, string | null>, message: string) => {
    const wc = join(work, ref.replace(/\//g, '_'));
    await rm(wc, { recursive: true, force: true });
    await svn(['checkout', '-q', `${url}/${ref}`, wc]);
    for (const [path, text] of Object.entries(files)) {
      if (text === null) await svn(['rm', '-q', join(wc, path)]);
      else {
        await writeFiles(wc, { [path]: text });
        await svn(['add', '-q', '--force', '--parents', join(wc, path)]);
      }
    }
    const { stdout } = await svn(['commit', '-m', message, wc]);
    return /Committed revision (\d+)/.exec(stdout)?.[1] ?? '';
  };

  await commit(
    'trunk',
    { 'server.mjs': serverSource('1.0'), 'README.txt': 'Sample KARL stand-in.\n' },
    'Sample app 1.0',
  );
  await svn(['copy', '-q', '-m', 'Tag 1.0', `${url}/trunk`, `${url}/tags/v1.0`]);
  await svn(['copy', '-q', '-m', 'Branch feature-x', `${url}/trunk`, `${url}/branches/feature-x`]);
  await commit('branches/feature-x', { 'server.mjs': serverSource('1.1-feature-x') }, 'Feature X');
  return { vcs: 'svn', url, defaultRef: 'trunk', featureRef: 'branches/feature-x', commit };
}
