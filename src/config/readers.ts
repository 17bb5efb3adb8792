import { isAbsolute, resolve } from 'node:path';
import { parseDuration } from '../core/duration.js';
import { splitList } from './values.js';

/**
 * Readers: what a key's text becomes in `Config`. Each key of schema.ts names the field it
 * fills and its reader (`field: 'basePort', read: whole`: cfg.staging.basePort, a number);
 * the type of each section of `Config` is worked out by the compiler from those two (FieldsOf
 * below), so a key is declared once and its field exists, typed, wherever the configuration
 * is used. A reader that may return undefined makes its field optional.
 *
 * A reader is given the key's text as written, else its default, else '' — also when the
 * text was refused by its kind's check: then the problem is reported and the configuration
 * is never used, so a reader only has to return something of its type.
 */

/** Where a key is read: the file's folder, and the other keys of its section (text or default). */
export interface ReadContext {
  root: string;
  value(key: string): string;
}

export type Reader<T = unknown> = (text: string, at: ReadContext) => T;

/** What a declaration says of its field: its name (none: the reader returns several) and reader. */
interface Fills {
  field?: string;
  read: Reader;
}

export const text = (t: string): string => t;
/** Empty: undefined. */
export const optional = (t: string): string | undefined => t || undefined;
export const whole = (t: string): number => Number(t);
export const yesNo = (t: string): boolean => t === 'yes';
/** Comma- (or space-) separated: a list, empty when the text is. */
export const list = (t: string): string[] => splitList(t);
/** A path as written, relative to the file's folder. */
export const path = (t: string, at: ReadContext): string =>
  isAbsolute(t) ? t : resolve(at.root, t);
export const optionalPath = (t: string, at: ReadContext): string | undefined =>
  t ? path(t, at) : undefined;
/** A duration in milliseconds. */
export const ms = (t: string): number => parseDuration(t) ?? 0;
/** A duration in milliseconds; `off`: undefined. */
export const msOrOff = (t: string): number | undefined =>
  t === 'off' ? undefined : parseDuration(t);
/** One of the choices (the first, the default, for a text its check refused). */
export const oneOf =
  <const C extends string>(choices: readonly C[]): Reader<C> =>
  (t) =>
    choices.includes(t as C) ? (t as C) : choices[0]!;

/** Turns a union A | B into A & B (the fields of every key, together). */
type Together<U> = (U extends unknown ? (u: U) => void : never) extends (all: infer I) => void
  ? I
  : never;

/** The fields one declaration fills: its field (optional when its reader may give undefined). */
type Filled<D> = D extends { field: infer F extends string; read: Reader<infer T> }
  ? undefined extends T
    ? { [K in F]?: Exclude<T, undefined> }
    : { [K in F]: T }
  : D extends { read: Reader<infer T> }
    ? T
    : never;

/** The fields of a section, as `Config` holds them: what each key fills, together. */
export type FieldsOf<S extends Record<string, Fills>> =
  Together<Filled<S[keyof S]>> extends infer All ? { [K in keyof All]: All[K] } : never;

/** The section's fields, filled by reading each key's text (or default). */
export function readSection<S extends Record<string, Fills>>(
  declared: S,
  value: (key: string) => string,
  root: string,
): FieldsOf<S> {
  const at: ReadContext = { root, value };
  const into: Record<string, unknown> = {};
  for (const key in declared) {
    const { field, read } = declared[key]!;
    const got = read(value(key), at);
    if (field) into[field] = got;
    else Object.assign(into, got);
  }
  return into as FieldsOf<S>;
}
