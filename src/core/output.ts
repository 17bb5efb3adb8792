import { Chalk } from 'chalk';
import { redact } from './redact.js';

export interface OutputOptions {
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  color?: boolean;
}

/**
 * The one way karlstage prints. Human lines go to stdout (errors and warnings
 * to stderr); with --json, stdout carries exactly one JSON document and human
 * lines are suppressed. Everything passes through redact().
 */
export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly verbose: boolean;
  readonly tty: boolean;
  readonly c: InstanceType<typeof Chalk>;

  constructor(opts: OutputOptions = {}, stdout: NodeJS.WriteStream = process.stdout) {
    this.json = Boolean(opts.json);
    this.quiet = Boolean(opts.quiet);
    this.verbose = Boolean(opts.verbose);
    this.tty = Boolean(stdout.isTTY);
    const color = opts.color !== false && !process.env.NO_COLOR && this.tty;
    this.c = new Chalk({ level: color ? 1 : 0 });
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

  result(value: unknown): void {
    if (this.json) process.stdout.write(redact(JSON.stringify(value, null, 2)) + '\n');
  }
}
