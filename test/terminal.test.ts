// Covers: src/core/output.ts src/core/printable.ts src/cli.ts
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { gitRepo } from './helpers/repos.js';
import { stagingServer } from './helpers/staging.js';

/**
 * Nothing read from outside reaches a terminal unescaped: a caught mail's Subject, a damaged
 * state.json, an argument. Each through the built binary, with its real exit status.
 */
// Set the window's title, clear the screen, a C1 CSI (U+009B) some terminals take for ESC [.
const HOSTILE = '\x1b]0;owned\x07\x1b[2J\u009b31mred';
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;
const ESCAPED = '\\x1b]0;owned\\x07\\x1b[2J\\x9b31mred';

describe('what reaches a terminal', () => {
  it('a caught Subject, a damaged state.json and a bad argument are shown escaped, with --json too', async () => {
    const st = await stagingServer(await gitRepo());
    await create({ ...st.g, branch: 'branch1' });

    // Mail-out kept by the real delivery (deliver --caught, as postfix runs it).
    const mailboxes = join(st.root, '.karlstage', 'mail', 'mailboxes.json');
    const { makeMaildir } = await import('../src/model/maildir.js');
    await makeMaildir(join(st.root, '.karlstage'), join(st.root, '.karlstage', 'mail', 'caught'));
    const message = `X-Original-To: ceo@customer.example.com\nX-Karlstage-Branch: branch1\nSubject: ${HOSTILE}\n\nbody\n`;
    const kept = await st.cli(
      ['deliver', '--mailboxes', mailboxes, '--caught', 'ceo@customer.example.com'],
      {},
      message,
    );
    expect(kept.exitCode, kept.stderr).toBe(0);
    const caught = await st.cli(['mail', '--caught']);
    expect(caught.exitCode, caught.stderr).toBe(0);
    expect(caught.stdout).toMatch(/ceo@customer\.example\.com\s+/);
    expect(caught.stdout).toContain(ESCAPED);
    expect(caught.stdout).not.toMatch(RAW_CONTROL);
    const json = await st.cli(['mail', '--caught', '--json']);
    expect(json.stdout).not.toMatch(RAW_CONTROL);
    expect(JSON.parse(json.stdout).caught[0].subject).toBe(HOSTILE);

    // An argument: refused (exit 2), named escaped.
    for (const args of [[`stat${HOSTILE}`], ['create', HOSTILE], ['status', `--${HOSTILE}`]]) {
      const r = await st.cli(args);
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).not.toMatch(RAW_CONTROL);
    }

    // A damaged state.json: JSON.parse quotes its bytes; a record's name is the file's too.
    const state = join(st.root, '.karlstage', 'state.json');
    for (const damaged of [
      `{"version": 1, ${HOSTILE}`,
      JSON.stringify({ version: 1, branches: { [HOSTILE]: { name: 'x' } } }),
    ]) {
      await writeFile(state, damaged);
      for (const args of [['status'], ['status', '--json'], ['update', '--all']]) {
        const r = await st.cli(args);
        expect(r.exitCode, r.stderr).toBe(1);
        expect(r.stderr).toContain('state.json is damaged');
        expect(r.stdout + r.stderr).not.toMatch(RAW_CONTROL);
        if (args.includes('--json')) expect(JSON.parse(r.stdout).error).toContain('damaged');
      }
    }
  });
});
