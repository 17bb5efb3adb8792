/**
 * Text read from outside (a mail's Subject, a damaged file, a program's output,
 * a recipient) must never steer a terminal: an escape sequence can clear the
 * screen, set the window's title or hide what follows. Control characters
 * (C0, DEL and C1, which JSON.stringify leaves raw from U+007F on) are shown as
 * \xNN instead; newline and tab are kept where they are layout.
 */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f]/g;
// eslint-disable-next-line no-control-regex
const CONTROL_BUT_LAYOUT = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

const hex = (c: string) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** Every control character escaped (\x1b); with `layout`, newline and tab kept. */
export function printable(text: string, opts: { layout?: boolean } = {}): string {
  return text.replace(opts.layout ? CONTROL_BUT_LAYOUT : CONTROL, hex);
}

/**
 * JSON for a terminal or a pipe: JSON.stringify escapes C0 but leaves DEL and C1
 * (U+007F to U+009F) raw; here they are \u escapes too, which any JSON reader
 * reads back as the same string.
 */
export function jsonText(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(
    /[\x7f-\x9f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
