// Covers: src/core/format.ts src/core/output.ts src/core/printable.ts
import { Chalk } from 'chalk';
import { describe, expect, it, vi } from 'vitest';
import { table } from '../../src/core/format.js';
import { forPeople, Output, type Paint } from '../../src/core/output.js';
import { jsonText, printable } from '../../src/core/printable.js';

// What a hostile Subject or a damaged file can hold: set the window title, clear the screen,
// a C1 CSI (U+009B) that some terminals read as ESC [, NEL, DEL, a carriage return.
const HOSTILE = 'a\x1b]0;owned\x07b\x1b[2Jc\u009b31md\u0085e\x7ff\rg';
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

describe('nothing read from outside reaches a terminal raw', () => {
  it('escapes every C0, DEL and C1 control character; newline and tab only where they are layout', () => {
    expect(printable(HOSTILE)).toBe('a\\x1b]0;owned\\x07b\\x1b[2Jc\\x9b31md\\x85e\\x7ff\\x0dg');
    expect(printable('one\n\ttwo')).toBe('one\\x0a\\x09two');
    expect(printable('one\n\ttwo\x1b', { layout: true })).toBe('one\n\ttwo\\x1b');
    expect(printable('Grüße, 東京, ok')).toBe('Grüße, 東京, ok');
  });

  it('JSON carries no raw C1 or DEL, and reads back as the same text', () => {
    const doc = jsonText({ subject: HOSTILE }, 2);
    expect(doc).not.toMatch(RAW_CONTROL);
    expect(JSON.stringify({ subject: HOSTILE })).toMatch(RAW_CONTROL); // what JSON alone leaves
    expect(JSON.parse(doc)).toEqual({ subject: HOSTILE });
  });

  it("the printer's colours survive; escape sequences in outside text do not", async () => {
    const noColor = process.env.NO_COLOR;
    delete process.env.NO_COLOR;
    const out = await Output.create({ color: true }, { isTTY: true } as NodeJS.WriteStream);
    process.env.NO_COLOR = noColor;
    const text = `${out.c.red(`${out.c.bold('failed')} twice`)}: ${HOSTILE}`;
    const chalk = new Chalk({ level: 1 });
    const paint: Paint = (style, s) => chalk[style](s);
    expect(forPeople(text, paint)).toBe(
      `${chalk.red(chalk.bold('failed'))}${chalk.red(' twice')}: ${printable(HOSTILE)}`,
    );
    expect(forPeople(text, paint)).toContain('\x1b[31m\x1b[1mfailed\x1b[22m\x1b[39m');
    expect(forPeople(text)).toBe(`failed twice: ${printable(HOSTILE)}`);
    // On a terminal, the printer paints with chalk: what it writes is forPeople's painted text.
    const painted: string[] = [];
    const onTerminal = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => {
      painted.push(String(chunk));
      return true;
    });
    try {
      out.line(text);
    } finally {
      onTerminal.mockRestore();
    }
    expect(painted).toEqual([`${forPeople(text, paint)}\n`]);
    // A mark cannot be forged from outside: its number changes with every run.
    expect(forPeople('\u{FFFE}0011223344556677:2\u{FFFE}x', paint)).not.toContain('\x1b');

    // Every way of printing goes through it: lines, warnings, errors and their details.
    const written: string[] = [];
    const spy = (stream: NodeJS.WriteStream) =>
      vi.spyOn(stream, 'write').mockImplementation((chunk: unknown) => {
        written.push(String(chunk));
        return true;
      });
    const spies = [spy(process.stdout), spy(process.stderr)];
    try {
      const plain = await Output.create({ verbose: true });
      plain.line(HOSTILE);
      plain.progress(HOSTILE);
      plain.debug(HOSTILE);
      plain.warn(HOSTILE);
      plain.error(HOSTILE, [HOSTILE]);
      plain.text(`${HOSTILE}\n${HOSTILE}\n`);
    } finally {
      spies.forEach((s) => s.mockRestore());
    }
    expect(written).toHaveLength(7);
    for (const w of written) {
      expect(w).not.toMatch(RAW_CONTROL);
      expect(w).toContain(printable(HOSTILE));
    }
  });

  it('tables keep a cell on its line and pad by what is shown', () => {
    const rows = table(['TO', 'SUBJECT'], [['x@example.org', 'two\nlines\x1b[2J']]);
    expect(rows).toHaveLength(2);
    expect(rows[1]).toBe('x@example.org  two\\x0alines\\x1b[2J');
    expect(rows[0]).toBe('TO             SUBJECT');
  });
});
