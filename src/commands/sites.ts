import { resolve } from 'node:path';
import { writeFileAtomic } from '../core/files.js';
import { commandContext, type GlobalOptions } from '../context/context.js';
import { UsageError } from '../core/errors.js';
import { publishedViews } from '../context/after-change.js';
import { currentSiteList, refreshSiteList, renderHtml, renderText } from '../publish/site-list.js';
import { jsonText } from '../core/printable.js';

export interface SitesOptions extends GlobalOptions {
  format?: string;
  output?: string;
}

/** The site list as html, json or text, on stdout or into --output; also refreshes .karlstage/sites/. */
export async function sites(opts: SitesOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out, options } = ctx;
  const format = opts.format ?? 'text';
  if (!['html', 'json', 'text'].includes(format))
    throw new UsageError(`--format ${format}: use html, json or text`);
  const views = await publishedViews(ctx);
  const list = options.dryRun
    ? await currentSiteList(cfg, views)
    : await refreshSiteList(cfg, views);
  const text =
    format === 'json'
      ? jsonText(list, 2) + '\n'
      : format === 'html'
        ? await renderHtml(list)
        : renderText(list);
  if (opts.output && !options.dryRun) {
    const file = resolve(opts.cwd ?? process.cwd(), opts.output);
    await writeFileAtomic(file, text, { mode: 0o644 });
    out.line(`wrote ${file}`);
  } else out.text(text);
  return list;
}
