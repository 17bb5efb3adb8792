import { redact } from './redact.js';

/** The few styles karlstage uses; chalk when colour is on, plain text otherwise. */
export interface Colours {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
}

const plain = (s: string) => s;
const PLAIN: Colours = { bold: plain, dim: plain, red: plain, green: plain, yellow: plain };

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
 * Everything passes through redact().
 */
export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly verbose: boolean;
  readonly tty: boolean;
  c: Colours = PLAIN;

  private constructor(opts: OutputOptions, stdout: NodeJS.WriteStream) {
    this.json = Boolean(opts.json);
    this.quiet = Boolean(opts.quiet);
    this.verbose = Boolean(opts.verbose);
    this.tty = Boolean(stdout.isTTY);
  }

  /** chalk is loaded only when colour will be shown (a terminal, no NO_COLOR): cron never pays for it. */
  static async create(
    opts: OutputOptions = {},
    stdout: NodeJS.WriteStream = process.stdout,
  ): Promise<Output> {
    const out = new Output(opts, stdout);
    if (opts.color !== false && !process.env.NO_COLOR && out.tty) {
      const { Chalk } = await import('chalk');
      out.c = new Chalk({ level: 1 });
    }
    return out;
  }

  /** A result line for people. */
  line(text = ''): void {
    if (this.json || this.quiet) return;
    process.stdout.write(redact(text) + '\n');
  }

  /** Detail shown only with --verbose. */
  debug(text: string): void {
    if (this.verbose && !this.json) process.stderr.write(this.c.dim(redact(text)) + '\n');
  }

  /** A progress line: timestamped when not on a terminal (cron, CI). */
  progress(text: string): void {
    if (this.json || this.quiet) return;
    const prefix = this.tty ? '' : `${new Date().toISOString()} `;
    process.stdout.write(prefix + redact(text) + '\n');
  }

  warn(text: string): void {
    process.stderr.write(this.c.yellow('warning: ') + redact(text) + '\n');
  }

  error(text: string, details: string[] = []): void {
    process.stderr.write(this.c.red('error: ') + redact(text) + '\n');
    for (const d of details) process.stderr.write(this.c.dim(redact(d)) + '\n');
  }
}
