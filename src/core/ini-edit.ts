/**
 * Line-based edits of ini files that people also edit by hand. The ini package
 * reads values but drops comments on rewrite; here a changed key is replaced in
 * place (keeping its trailing comment), a missing one is added at the end of its
 * section, and every other line, section and comment stays as it was.
 */
export const SECTION = /^\s*\[([^\]]+)\]\s*([;#].*)?$/;
export const KEY = /^\s*([^=\s[;#][^=]*?)\s*=/;
const TRAILING_COMMENT = /\s+[;#].*$/;

export function setSectionKeys(
  text: string,
  section: string,
  values: Record<string, string>,
): string {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => SECTION.exec(l)?.[1]?.trim() === section);
  if (start < 0) {
    const block = [`[${section}]`, ...Object.entries(values).map(([k, v]) => `${k} = ${v}`)];
    const body = text.replace(/\n*$/, '');
    return `${body}${body ? '\n\n' : ''}${block.join('\n')}\n`;
  }
  let end = lines.findIndex((l, i) => i > start && SECTION.test(l));
  if (end < 0) end = lines.length;
  const pending = new Map(Object.entries(values));
  let lastKey = start;
  for (let i = start + 1; i < end; i++) {
    const line = lines[i] ?? '';
    const key = KEY.exec(line)?.[1];
    if (key === undefined) continue;
    lastKey = i;
    if (pending.has(key)) {
      const comment = TRAILING_COMMENT.exec(line.slice(line.indexOf('=') + 1))?.[0] ?? '';
      lines[i] = `${key} = ${pending.get(key)}${comment}`;
      pending.delete(key);
    }
  }
  lines.splice(lastKey + 1, 0, ...[...pending].map(([k, v]) => `${k} = ${v}`));
  return lines.join('\n');
}

/** Keys given more than once within one section (the ini package would silently keep the last). */
export function duplicateKeys(text: string): { section: string; key: string }[] {
  const seen = new Set<string>();
  const dups: { section: string; key: string }[] = [];
  let section = '';
  for (const line of text.split('\n')) {
    const s = SECTION.exec(line)?.[1];
    if (s !== undefined) {
      section = s.trim();
      continue;
    }
    const key = KEY.exec(line)?.[1];
    if (key === undefined || /^\s*[;#]/.test(line)) continue;
    const id = `${section}\u0000${key}`;
    if (seen.has(id)) dups.push({ section, key });
    seen.add(id);
  }
  return dups;
}
