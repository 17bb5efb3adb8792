import { describe, expect, it } from 'vitest';
import { parseInstances, setInstanceKeys } from '../../src/model/instances.js';

const FILE = `# Our instances; do not remove this comment
[instance:osf]
dsn = dbname=ks_b_osf host=db
; a comment people wrote
virtual_host = a.example.com b.example.com
custom_key = kept

[other]
unrelated = 1

[instance:another]
dsn = dbname=ks_b_another
`;

describe('instances.ini', () => {
  it('reads [instance:NAME] sections as customers', () => {
    const list = parseInstances(FILE, 'etc/instances.ini');
    expect(list.map((i) => i.name)).toEqual(['osf', 'another']);
    expect(list[0]?.values.virtual_host).toBe('a.example.com b.example.com');
  });

  it('changes only the keys it must, keeping every other line and comment', () => {
    const out = setInstanceKeys(FILE, 'osf', {
      dsn: 'dbname=new',
      mail_white_list: '/x/allow.txt',
    });
    const expected = FILE.replace('dsn = dbname=ks_b_osf host=db', 'dsn = dbname=new').replace(
      'custom_key = kept\n',
      'custom_key = kept\nmail_white_list = /x/allow.txt\n',
    );
    expect(out).toBe(expected);
  });

  it('adds a missing section at the end', () => {
    const out = setInstanceKeys(FILE, 'third', { dsn: 'dbname=t' });
    expect(out.startsWith(FILE.trimEnd())).toBe(true);
    expect(out.endsWith('\n\n[instance:third]\ndsn = dbname=t\n')).toBe(true);
  });

  it('reports malformed lines and bad customer names with file and line', () => {
    expect(() => parseInstances('[instance:osf]\nthis is not ini\n', 'f.ini')).toThrow(
      /f.ini is malformed/,
    );
    try {
      parseInstances('[instance:Bad Name]\ndsn = x\n[instance:osf]\ngarbage line\n', 'f.ini');
    } catch (e) {
      expect((e as { details: string[] }).details).toEqual([
        'f.ini:4: not a [section], key = value or comment: garbage line',
        'f.ini: [instance:Bad Name]: customer name not allowed: use 1 to 31 lower-case letters, digits and "-", starting with a letter',
      ]);
    }
  });
});
