import { resolve } from 'node:path';
import { writeFileAtomic } from '../core/files.js';
import { commandContext, type GlobalOptions } from '../context/context.js';
import { UsageError } from '../core/errors.js';
import { readState } from '../model/state.js';
import { branchViews } from '../model/views.js';
import { collectSiteList, refreshSiteList, renderHtml, renderText } from '../publish/site-list.js';

export interface SitesOptions extends GlobalOptions {
  format?: string;
  output?: string;
}

/** The site list as html, json or text, on stdout or into --output; also refreshes .karlstage/sites/. */
export async function sites(opts: SitesOptions) {
  const { cfg, out, g } = await commandContext(opts);
  const format = opts.format ?? 'text';
  if (!['html', 'json', 'text'].includes(format))
    throw new UsageError(`--format ${format}: use html, json or text`);
  const views = await branchViews(cfg, await readState(cfg.root));
  const list = g.dryRun ? collectSiteList(cfg, views) : await refreshSiteList(cfg, views);
  const text =
    format === 'json'
      ? JSON.stringify(list, null, 2) + '\n'
      : format === 'html'
        ? await renderHtml(list)
        : renderText(list);
  if (opts.output && !g.dryRun) {
    const file = resolve(opts.cwd ?? process.cwd(), opts.output);
    await writeFileAtomic(file, text, { mode: 0o644 });
    out.line(`wrote ${file}`);
  } else if (!out.quiet && !out.json) process.stdout.write(text);
  return list;
}
