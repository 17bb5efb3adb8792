// Covers: src/core/dsn.ts src/db/names.ts src/instances/configparser.ts src/instances/instances.ts src/instances/write.ts
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatDsn, parseDsn } from '../../src/core/dsn.js';
import { stagingDsn } from '../../src/db/names.js';
import {
  decodeIni,
  IniRefused,
  parseIni,
  sectionValues,
} from '../../src/instances/configparser.js';
import { BrokenSiteError, parseInstances } from '../../src/instances/instances.js';
import { dsnForIni, renderInstancesIni, setInstanceKeys } from '../../src/instances/write.js';
import { PYTHON2, pythonRead, type PythonRead } from '../helpers/python-ini.js';
import { tempDir } from '../helpers/tmp.js';

/*
 * instances.ini is KARL's file, read by Python's ConfigParser. Every file here is
 * also read by Python 3's configparser (Debian's /usr/bin/python3), and by Python
 * 2.7's ConfigParser (karlserve's) where this machine has one, in one run per batch.
 */

type Read =
  { ok: true; values: Record<string, Record<string, string>> } | { ok: false; why: string };

/** Every section as karlstage reads it (all of them, as the Python side reads all). */
function karlstage(text: string | Uint8Array, file: string): Read {
  try {
    const ini = parseIni(typeof text === 'string' ? text : decodeIni(text));
    const values: Record<string, Record<string, string>> = {};
    for (const s of ini.sections) values[s.name] = sectionValues(ini, s, join(file, '..'));
    return { ok: true, values };
  } catch (e) {
    if (e instanceof IniRefused) return { ok: false, why: e.message };
    throw e;
  }
}

const sorted = (v: Record<string, Record<string, string>>) =>
  JSON.stringify(
    Object.fromEntries(
      Object.entries(v)
        .sort()
        .map(([s, o]) => [s, Object.fromEntries(Object.entries(o).sort())]),
    ),
  );

/** Python 2 reads "%%" as two characters where no "%(" is near (the caveat): left out of its comparison. */
const withoutPercent = (v: Record<string, Record<string, string>>, text: string | Uint8Array) =>
  typeof text === 'string' && text.includes('%%')
    ? Object.fromEntries(Object.keys(v).map((s) => [s, {}]))
    : v;

/** Both Pythons, over the same files in one folder (so `here` is the same). */
async function bothPythons(files: (string | Uint8Array)[]) {
  const py3 = await pythonRead(files);
  const py2 = PYTHON2 ? await pythonRead(files, PYTHON2, join(py3[0]!.file, '..')) : undefined;
  return { py3, py2 };
}

/**
 * The rule: karlstage reads a file exactly as Python 3 does (and as Python 2 does,
 * "%%" aside), or refuses it with a line number; and it refuses only what Python
 * refuses or what Python 2 and 3 read differently (or an odd character).
 */
function judge(text: string | Uint8Array, py3: PythonRead, py2?: PythonRead): string | undefined {
  const ours = karlstage(text, py3.file);
  if (ours.ok) {
    if (!py3.ok) return `karlstage read what Python 3 refuses (${py3.error})`;
    if (sorted(ours.values) !== sorted(py3.values)) return 'karlstage and Python 3 differ';
    if (py2 && !py2.ok && !String(text).includes('%'))
      return `karlstage read what Python 2 refuses (${py2.error})`;
    if (
      py2?.ok &&
      sorted(withoutPercent(ours.values, text)) !== sorted(withoutPercent(py2.values, text))
    )
      return 'karlstage and Python 2 differ';
    return undefined;
  }
  if (!/^line \d+: /.test(ours.why)) return `a refusal without a line: ${ours.why}`;
  const agree = py3.ok && py2?.ok && sorted(py3.values) === sorted(py2.values);
  if (agree && !/character U\+|non-ASCII/.test(ours.why))
    return `refused what both Pythons read alike: ${ours.why}`;
  return undefined;
}

/** A small seeded generator: the same files on every run. */
function random(seed: number) {
  return (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

describe('instances.ini as KARL reads it', () => {
  it('writes values Python 3 reads back exactly: passwords with %, %(, ;, #, quotes, spaces, non-ASCII', async () => {
    const passwords = [
      '50%off',
      'a%(here)sb',
      '%(',
      '%%',
      '100%',
      'semi;colon',
      'two ;spaced',
      'hash#tag',
      ' # lead',
      'quo"te',
      "apo'strophe",
      'back\\slash',
      'ünïcødé',
      '密码',
      'a = b: c',
      '[instance:x]',
      'tab\there',
    ];
    const database = formatDsn({ host: 'db.example.org', port: '5432', user: 'karl' });
    const dsns = passwords.map((p) =>
      stagingDsn(formatDsn({ ...parseDsn(database), password: p }), 'branch1', 'osf'),
    );
    const dir = await tempDir();
    const file = join(dir, 'etc', 'instances.ini');
    const testersFile = join(dir, 'root 50%', '.karlstage', 'mail-allow-list.txt');
    const texts = await Promise.all(
      dsns.map((dsn) =>
        renderInstancesIni(file, 'branch1', [
          { name: 'osf', dsn, host: 'karltest.example.org', testersFile },
        ]),
      ),
    );
    const { py3, py2 } = await bothPythons(texts);
    texts.forEach((text, i) => {
      const read = py3[i]!;
      expect(read.ok, `password ${passwords[i]}: ${!read.ok && read.error}`).toBe(true);
      if (!read.ok) return;
      const osf = read.values['instance:osf']!;
      // ConfigParser gives the DSN meant, and libpq (as karlstage parses it) the password meant.
      expect(osf.dsn).toBe(dsnForIni(dsns[i]!));
      expect(parseDsn(osf.dsn!).password).toBe(passwords[i]);
      expect(osf.mail_white_list).toBe(testersFile);
      expect(osf.virtual_host).toBe('karltest.example.org');
      expect(read.raw!['instance:osf']!.dsn).toBe(dsnForIni(dsns[i]!).replace(/%/g, '%%'));
      // karlstage reads its own file as Python does.
      expect(judge(text, { ...read, file: read.file }, py2?.[i])).toBeUndefined();
      expect(parseInstances(text, read.file)[0]!.values).toEqual(
        Object.fromEntries(Object.entries(osf).map(([k, v]) => [k, v])),
      );
    });
    // doctor's warning: which keys a Python 2 karlserve reads differently (the path has "50%").
    expect(parseInstances(texts[0]!, py3[0]!.file)[0]!.percentEscapes).toEqual([
      'dsn',
      'mail_white_list',
    ]);
    expect(parseInstances(texts[5]!, py3[5]!.file)[0]!.percentEscapes).toEqual(['mail_white_list']);
    // The Python 2 caveat, shown: karlserve's ConfigParser reads "%%" as two characters.
    if (py2?.[0]?.ok) expect(py2[0].values['instance:osf']!.dsn).toContain('password=50%%off');
  });

  it('refuses a value ConfigParser cannot carry, naming where it came from', async () => {
    const file = '/srv/ks/branch1/etc/instances.ini';
    const bad = { name: 'osf', host: 'h', testersFile: '/a' };
    await expect(
      renderInstancesIni(file, 'b', [
        { ...bad, dsn: formatDsn({ host: 'db', password: 'two\nlines' }) },
      ]),
    ).rejects.toThrow(
      /connection string of osf's staging database \(\[staging\] database\) cannot be written .*line break/,
    );
    await expect(
      renderInstancesIni(file, 'b', [{ ...bad, dsn: 'host=db', testersFile: '/x ;y/list.txt' }]),
    ).rejects.toThrow(/staging root's path .* a ";" after a space/);
  });

  const HAND = [
    '# people wrote this',
    '[instance:osf]',
    'DSN: host=db dbname=ks_b_osf',
    'Virtual_Host = a.example.org',
    '  b.example.org',
    '; a comment people wrote',
    'Mail_White_List = /old/allow.txt',
    '  /continued',
    'custom = kept',
    '',
    '[other]',
    'unrelated = 1',
    '',
  ];

  it('rewrites one key in place (any case, "=" or ":"), keeping every other line and its line ends', async () => {
    for (const eol of ['\n', '\r\n']) {
      const text = HAND.join(eol);
      const set = { value: '/srv/ks/.karlstage/mail-allow-list.txt', source: 'test' };
      const out = setInstanceKeys(text, '/x/etc/instances.ini', 'osf', {
        mail_white_list: set,
        keep_history: { value: 'false', source: 'test' },
      });
      const expected = [...HAND];
      expected.splice(6, 2, `Mail_White_List = ${set.value}`);
      expected.splice(8, 0, 'keep_history = false');
      expect(out).toBe(expected.join(eol));
      const added = setInstanceKeys(text, '/x/etc/instances.ini', 'new', {
        dsn: { value: 'host=db password=1%', source: 'test' },
      });
      expect(added).toBe(`${text}${eol}[instance:new]${eol}dsn = host=db password=1%%${eol}`);
      const [py] = await pythonRead([added]);
      expect(py!.ok && py!.values['instance:new']!.dsn).toBe('host=db password=1%');
      expect(py!.ok && py!.values['instance:osf']!.virtual_host).toBe(
        'a.example.org\nb.example.org',
      );
    }
  });

  // Hand edits: each is read exactly as Python reads it, or refused with its line and why.
  const CORPUS: [string, string | Uint8Array, RegExp | 'read'][] = [
    ['key case', '[instance:osf]\nMAIL_white_LIST = /x\n', 'read'],
    ['colon', '[instance:osf]\ndsn: host=db\n', 'read'],
    ['continuation lines', '[instance:osf]\nvirtual_host = a\n  b\n\tc\n', 'read'],
    ['comments on their own lines', '# a\n; b\n[instance:osf]\n# c\ndsn = x\n; d\n', 'read'],
    ['a comment between continuation lines', '[instance:osf]\nk = a\n# c\n  b\n', 'read'],
    ['no quote stripping', '[instance:osf]\ndsn = "host=db"\nq = \'x\'\n', 'read'],
    [
      '"#" after a value is kept',
      '[instance:osf]\nmail_white_list = /srv/allow.txt # old\n',
      'read',
    ],
    ['";" without a space is kept', '[instance:osf]\ndsn = a;b ;c\n', 'read'],
    ['%(here)s and %%', '[instance:osf]\nroot_dir = %(here)s/../var\np = 50%%\n', 'read'],
    [
      '[DEFAULT] is inherited',
      '[DEFAULT]\nmail_white_list = /x\n[instance:osf]\ndsn = y\n',
      'read',
    ],
    ['CRLF', '[instance:osf]\r\ndsn = x\r\n  more\r\n', 'read'],
    ['no final line end', '[instance:osf]\ndsn = x', 'read'],
    ['trailing blank lines in a value', '[instance:osf]\nk = a\n  b\n\n\n[x]\n', 'read'],
    [
      'an inline " ;" comment',
      '[instance:osf]\nk = v\nmail_white_list = /x ; old\n',
      /^line 3: a ";" after a space/,
    ],
    ['a BOM', '\ufeff[instance:osf]\ndsn = x\n', /^line 1: a byte-order mark/],
    [
      'a key given twice',
      '[instance:osf]\nMail_White_List = /a\nmail_white_list = /b\n',
      /^line 3: mail_white_list is given twice .*first on line 2/,
    ],
    [
      'a section given twice',
      '[instance:osf]\n[x]\n[instance:osf]\n',
      /^line 3: \[instance:osf\] is given twice/,
    ],
    [
      'a lone %',
      '[instance:osf]\ndsn = password=50%off\n',
      /^line 2: dsn in \[instance:osf\]: .*write a "%" as "%%"/,
    ],
    ['an unknown %(name)s', '[instance:osf]\ndsn = %(nope)s\n', /^line 2: dsn .*names no key/],
    ['an indented comment', '[instance:osf]\nk = v\n  # old\n', /^line 3: an indented comment/],
    [
      'a blank line inside a value',
      '[instance:osf]\nk = a\n\n  b\n',
      /^line 3: a blank line inside the value of k/,
    ],
    ['an indented key', '[instance:osf]\n  k = v\n', /^line 2: indented/],
    ['a "rem" line', '[instance:osf]\nrem = 1\n', /^line 2: a line starting with the word "rem"/],
    ['a value of ""', '[instance:osf]\nk = ""\n', /^line 2: a value of just ""/],
    [
      'a garbage line',
      '[instance:osf]\nthis is not ini\n',
      /^line 2: "this is not ini" is not a \[section\]/,
    ],
    [
      'text before any section',
      'dsn = x\n[instance:osf]\n',
      /^line 1: "dsn = x" comes before the first \[section\]/,
    ],
    ['a lone CR', '[instance:osf]\rdsn = x\n', /^line 1: a carriage return inside the line/],
    [
      'not UTF-8',
      Uint8Array.from([...Buffer.from('[instance:osf]\nk = '), 0xff, 0x0a]),
      /^line 2: not UTF-8/,
    ],
    ['"]" in a section name', '[instance:osf]x]\nk = v\n', /^line 1: the section name/],
  ];

  it('reads a corpus of hand edits as Python does, or refuses with the line and what to change', async () => {
    const { py3, py2 } = await bothPythons(CORPUS.map(([, text]) => text));
    CORPUS.forEach(([what, text, expected], i) => {
      const ours = karlstage(text, py3[i]!.file);
      if (expected === 'read') expect(ours, what).toMatchObject({ ok: true });
      else expect(ours.ok ? 'read' : ours.why, what).toMatch(expected);
      expect(judge(text, py3[i]!, py2?.[i]), what).toBeUndefined();
    });
  });

  it('random and damaged files: each is read exactly as Python reads it, or refused with a line', async () => {
    const rnd = random(25);
    const LINES = [
      '[instance:osf]',
      '[instance:b]',
      '[DEFAULT]',
      '[other]',
      'dsn = host=db password=50%%off',
      'k=v',
      'Key: v',
      'k = "q"',
      'k =',
      'k = %(here)s/x',
      '  continued',
      '\tcontinued',
      '',
      '# c',
      '; c',
      'mail_white_list = /x',
      'k = ü',
      'k = a\\;b',
      'k = %(mail_white_list)s!',
      'k=;x',
      'k = a;b ;c',
      'k = v # kept',
    ];
    const DAMAGE = [
      'k = a ;b',
      '  # c',
      'rem x',
      '= v',
      'garbage',
      'k = 50%off',
      ' [x]',
      '[a]b]',
      'k = ""',
    ];
    const files: (string | Uint8Array)[] = [];
    // As the issue tried it: 20 random 300-byte files.
    for (let i = 0; i < 20; i++) files.push(Uint8Array.from({ length: 300 }, () => rnd(256)));
    for (let i = 0; i < 400; i++) {
      const eol = rnd(4) === 0 ? '\r\n' : '\n';
      const lines = Array.from({ length: 2 + rnd(10) }, () =>
        (rnd(10) ? LINES[rnd(LINES.length)]! : DAMAGE[rnd(DAMAGE.length)]!).replace(
          /^k\b/,
          () => `k${rnd(50)}`,
        ),
      );
      let text = (rnd(10) ? '[instance:first]' + eol : '') + lines.join(eol) + (rnd(4) ? eol : '');
      if (rnd(6) === 0) {
        // A damaged byte somewhere.
        const at = rnd(text.length);
        text = text.slice(0, at) + String.fromCharCode(rnd(128)) + text.slice(at + 1);
      }
      files.push(text);
    }
    const { py3, py2 } = await bothPythons(files);
    const wrong = files
      .map((f, i) => ({ f, why: judge(f, py3[i]!, py2?.[i]) }))
      .filter((x) => x.why);
    expect(wrong.slice(0, 3)).toEqual([]);
    // None of the issue's random 300-byte files is taken for an instances.ini.
    expect(files.slice(0, 20).filter((f, i) => karlstage(f, py3[i]!.file).ok)).toEqual([]);
    // Not all damage: a good share of the files are read (and so compared value by value).
    expect(files.filter((f, i) => karlstage(f, py3[i]!.file).ok).length).toBeGreaterThan(80);
  });

  it('a file with no [instance:…] left, or a bad customer name, is a broken site in one line', () => {
    const f = '/srv/ks/branch1/etc/instances.ini';
    const cases: [string, RegExp][] = [
      [
        '# all gone\n[other]\nk = v\n',
        /has no \[instance:NAME\] section left, so the site serves no customer/,
      ],
      [
        '[instance:Bad Name]\ndsn = x\n',
        /line 1: \[instance:Bad Name\]: the customer name is not allowed/,
      ],
      ['[instance:osf\ngarbage\n', /line 1: "\[instance:osf" comes before the first \[section\]/],
    ];
    for (const [text, message] of cases) {
      let error: unknown;
      try {
        parseInstances(text, f);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(BrokenSiteError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).not.toContain('\n');
      expect((error as Error).message.startsWith(f)).toBe(true);
    }
  });
});
