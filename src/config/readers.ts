import { isAbsolute, resolve } from 'node:path';
import { parseDuration } from '../core/duration.js';
import { splitList } from './values.js';

/**
 * Readers: how a key's text becomes the field of `Config` it fills. Each key of schema.ts
 * names its reader and its field (`read: whole('basePort')`); the type of each section of
 * `Config` is worked out by the compiler from those readers (FieldsOf below), so a key is
 * declared once and its field exists, typed, wherever the configuration is used.
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

/**
 * A key's reader: puts what its text means into the field (or fields) it fills. `fields` is
 * never set: it tells the compiler which fields those are, and of what type.
 */
export interface Reader<Fields extends object = object> {
  (text: string, at: ReadContext, into: Record<string, unknown>): void;
  readonly fields?: Fields;
}

type Convert<T> = (text: string, at: ReadContext) => T;

/** Fills `field` with the converted text. */
export const one =
  <F extends string, T>(field: F, convert: Convert<T>): Reader<{ [K in F]: T }> =>
  (text, at, into) => {
    into[field] = convert(text, at);
  };

/** Fills the optional `field` with the converted text; an empty text leaves it undefined. */
export const maybe =
  <F extends string, T>(field: F, convert: Convert<T>): Reader<{ [K in F]?: T }> =>
  (text, at, into) => {
    into[field] = text ? convert(text, at) : undefined;
  };

/** Fills every field of what the text converts to (a key that fills more than one). */
export const fields =
  <T extends object>(convert: Convert<T>): Reader<T> =>
  (text, at, into) => {
    Object.assign(into, convert(text, at));
  };

/** A path as written, relative to the file's folder. */
export const inRoot = (text: string, at: ReadContext) =>
  isAbsolute(text) ? text : resolve(at.root, text);

export const text = <F extends string>(field: F) => one(field, (t) => t);
export const optionalText = <F extends string>(field: F) => maybe(field, (t) => t);
export const whole = <F extends string>(field: F) => one(field, (t) => Number(t));
/** yes → true, no → false. */
export const yes = <F extends string>(field: F) => one(field, (t) => t === 'yes');
/** Comma- (or space-) separated: a list, empty when the text is. */
export const list = <F extends string>(field: F) => one(field, splitList);
export const path = <F extends string>(field: F) => one(field, inRoot);
export const optionalPath = <F extends string>(field: F) => maybe(field, inRoot);
/** One of the choices (the first, the default, for a text its check refused). */
export const oneOf = <F extends string, const C extends string>(field: F, choices: readonly C[]) =>
  one(field, (t) => (choices.includes(t as C) ? (t as C) : choices[0]!));
/** A duration in milliseconds. */
export const ms = <F extends string>(field: F) => one(field, (t) => parseDuration(t) ?? 0);
/** A duration in milliseconds; `off` leaves the field undefined. */
export const msOrOff = <F extends string>(field: F) =>
  maybe(field, (t) => (t === 'off' ? undefined : parseDuration(t)));

/** The declarations of one section: each key with its reader. */
type Declared = Record<string, { read: Reader }>;

/** Turns a union A | B into A & B (the fields of every key, together). */
type Together<U> = (U extends unknown ? (u: U) => void : never) extends (all: infer I) => void
  ? I
  : never;

/** The fields one reader fills. */
type Filled<R> = R extends Reader<infer Fields> ? Fields : never;

/** The fields of a section, as `Config` holds them: what each key's reader fills, together. */
export type FieldsOf<S extends Declared> =
  Together<Filled<S[keyof S]['read']>> extends infer All ? { [K in keyof All]: All[K] } : never;

/** The section's fields, filled by reading each key's text (or default). */
export function readSection<S extends Declared>(
  declared: S,
  value: (key: string) => string,
  root: string,
): FieldsOf<S> {
  const at: ReadContext = { root, value };
  const into: Record<string, unknown> = {};
  for (const key in declared) declared[key]!.read(value(key), at, into);
  return into as FieldsOf<S>;
}
