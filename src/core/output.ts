import { randomBytes } from 'node:crypto';
import { printable } from './printable.js';
import { redact } from './redact.js';

/** The few styles karlstage uses; marks the printer turns into colour when colour is on. */
const STYLES = ['bold', 'dim', 'red', 'green', 'yellow'] as const;
export type Style = (typeof STYLES)[number];
export type Colours = Record<Style, (s: string) => string>;

const plain = (s: string) => s;
const PLAIN: Colours = { bold: plain, dim: plain, red: plain, green: plain, yellow: plain };

/** Paints escaped text in a style (chalk's, on a terminal). */
export type Paint = (style: Style, text: string) => string;

/*
 * A colour is a pair of marks with a number no text from outside can know (it changes with
 * every run): the printer escapes everything else first, then paints what the marks enclose
 * (with chalk). So a mail's Subject or a damaged file can hold any escape sequence, and none
 * reaches the terminal.
 */
const NONCE = randomBytes(8).toString('hex');
const MARK = new RegExp(`\u{FFFE}${NONCE}:(\\d|/)\u{FFFE}`, 'gu');
const mark = (code: string) => `\u{FFFE}${NONCE}:${code}\u{FFFE}`;
const MARKED = Object.fromEntries(
  STYLES.map((name, i) => [name, (s: string) => mark(String(i)) + s + mark('/')]),
) as Colours;

/**
 * Text as it may reach a terminal: passwords masked, control characters escaped (newline and
 * tab kept as layout), what colour marks enclose painted by `paint` (or left plain).
 */
export function forPeople(text: string, paint?: Paint): string {
  const open: Style[] = [];
  return text
    .split(MARK)
    .map((part, i) => {
      if (i % 2) {
        if (part === '/') open.pop();
        else open.push(STYLES[Number(part)]!);
        return '';
      }
      const safe = printable(redact(part), { layout: true });
      return paint && safe ? open.reduceRight((s, style) => paint(style, s), safe) : safe;
    })
    .join('');
}

/** The text as it will take room on a line: colour marks take none, escapes their length. */
export const visibleLength = (text: string): number => forPeople(text).length;

export interface OutputOptions {
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  color?: boolean;
}

/**
 * The one way karlstage prints for people. Human lines go to stdout (errors
 * and warnings to stderr); with --json they are suppressed, and stdout carries
 * only the one JSON document the CLI prints from the command's result (cli.ts).
 * Everything passes through forPeople(): masked, control characters escaped.
 */
export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly verbose: boolean;
  readonly tty: boolean;
  c: Colours = PLAIN;
  private paint?: Paint;

  private constructor(opts: OutputOptions, stdout: NodeJS.WriteStream) {
    this.json = Boolean(opts.json);
    this.quiet = Boolean(opts.quiet);
    this.verbose = Boolean(opts.verbose);
    this.tty = Boolean(stdout.isTTY);
  }

  /** Colour only on a terminal, and not with NO_COLOR or --no-color: cron gets plain lines. */
  static async create(
    opts: OutputOptions = {},
    stdout: NodeJS.WriteStream = process.stdout,
  ): Promise<Output> {
    const out = new Output(opts, stdout);
    if (opts.color !== false && !process.env.NO_COLOR && out.tty) {
      // Loaded only when colour will be shown: cron and pipes never pay for it.
      const { Chalk } = await import('chalk');
      const chalk = new Chalk({ level: 1 });
      out.c = MARKED;
      out.paint = (style, text) => chalk[style](text);
    }
    return out;
  }

  private write(stream: NodeJS.WriteStream, text: string): void {
    stream.write(forPeople(text, this.paint) + '\n');
  }

  /** A result line for people. */
  line(text = ''): void {
    if (this.json || this.quiet) return;
    this.write(process.stdout, text);
  }

  /** A block of lines for people (a generated file shown, a report): the same care as a line. */
  text(block: string): void {
    if (this.json || this.quiet) return;
    this.write(process.stdout, block.replace(/\n$/, ''));
  }

  /** Detail shown only with --verbose. */
  debug(text: string): void {
    if (this.verbose && !this.json) this.write(process.stderr, this.c.dim(text));
  }

  /** A progress line: timestamped when not on a terminal (cron, CI). */
  progress(text: string): void {
    if (this.json || this.quiet) return;
    const prefix = this.tty ? '' : `${new Date().toISOString()} `;
    this.write(process.stdout, prefix + text);
  }

  warn(text: string): void {
    this.write(process.stderr, this.c.yellow('warning: ') + text);
  }

  error(text: string, details: string[] = []): void {
    this.write(process.stderr, this.c.red('error: ') + text);
    for (const d of details) this.write(process.stderr, this.c.dim(d));
  }
}
