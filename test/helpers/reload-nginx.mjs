#!/usr/bin/env node
// [staging] reload for the tests' nginx: signal a reload, and return only once every worker of
// the old configuration has exited, so that no request after it can reach the old routes.
// Usage: node reload-nginx.mjs PREFIX MAIN_CONF
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [prefix, main] = process.argv.slice(2);
const master = Number(readFileSync(join(prefix, 'nginx.pid'), 'utf8').trim());
const childrenOf = (pid) =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const old = childrenOf(master);
execFileSync('nginx', ['-p', prefix, '-c', main, '-s', 'reload'], { stdio: 'inherit' });
const deadline = Date.now() + 15_000;
while (old.some(alive)) {
  if (Date.now() > deadline) {
    console.error('nginx: the old workers did not exit within 15 s of the reload');
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 20));
}
