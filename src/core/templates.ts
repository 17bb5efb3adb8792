import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import Mustache from 'mustache';

/** templates/ ships with the package, beside src/ and dist/. */
export const templatesDir = fileURLToPath(new URL('../../templates/', import.meta.url));

/** Render templates/NAME with Mustache; ini and conf files are not HTML, so no HTML escaping there. */
export async function renderTemplate(
  name: string,
  view: object,
  escape: 'html' | 'none' = 'none',
): Promise<string> {
  const template = await readFile(templatesDir + name, 'utf8');
  return Mustache.render(
    template,
    view,
    {},
    escape === 'none' ? { escape: (s: string) => s } : undefined,
  );
}
