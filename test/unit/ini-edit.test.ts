// Covers: src/core/ini-edit.ts src/core/ini-read.ts
import { describe, expect, it } from 'vitest';
import { setSectionKeys } from '../../src/core/ini-edit.js';
import { readIni } from '../../src/core/ini-read.js';

describe('editing an ini file people also edit', () => {
  const text = `; a comment people wrote\n[customer:osf]\nproduction = host=db ; the live one\nmail_branch = branch1   # keep\n\n[customer:another]\nmail_branch = branch2\n`;

  it('replaces one key in place, keeping its comment and every other line', () => {
    const after = setSectionKeys(text, 'customer:osf', { mail_branch: 'branch2' });
    expect(after).toBe(
      text.replace('mail_branch = branch1   # keep', 'mail_branch = branch2   # keep'),
    );
  });

  it('adds a missing key at the end of its section, and a missing section at the end', () => {
    expect(setSectionKeys(text, 'customer:another', { sanitize: 's.sql' })).toBe(
      text.replace('mail_branch = branch2\n', 'mail_branch = branch2\nsanitize = s.sql\n'),
    );
    expect(setSectionKeys(text, 'customer:new', { mail_branch: 'b' })).toBe(
      `${text.trimEnd()}\n\n[customer:new]\nmail_branch = b\n`,
    );
  });

  it('reads back what it wrote (the strict reader agrees)', () => {
    const { sections, problems } = readIni(
      setSectionKeys(text, 'customer:osf', { mail_branch: 'branch9' }),
    );
    expect(problems).toEqual([]);
    expect(sections[0]!.entries).toEqual([
      { key: 'production', value: 'host=db', line: 3 },
      { key: 'mail_branch', value: 'branch9', line: 4 },
    ]);
  });
});

describe('reading karlstage.ini strictly', () => {
  it('keeps line numbers, quotes and comments as documented', () => {
    const { sections, problems } = readIni(
      '\uFEFF[s]\na = "x ; y"\nb = a;b#c ; comment\nc = \'q\'\n',
    );
    expect(problems).toEqual([]);
    expect(sections[0]!.entries.map((e) => [e.key, e.value, e.line])).toEqual([
      ['a', 'x ; y', 2],
      ['b', 'a;b#c', 3],
      ['c', 'q', 4],
    ]);
  });
});
