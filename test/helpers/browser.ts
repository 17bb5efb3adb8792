import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';

export const OUTPUT = join(import.meta.dirname, '..', '..', 'test-output', 'sites');

export const VIEWPORTS = [
  ['desktop', { width: 1280, height: 900 }],
  ['phone', { width: 390, height: 844 }],
] as const;

/**
 * Open a local page in Debian's Chromium at a laptop's and a phone's width; `check` runs on
 * each; a full-page screenshot is kept as test-output/sites/NAME-WIDTH.png.
 */
export async function inBrowser(
  file: string,
  name: string,
  check: (tab: Page, viewport: { width: number; height: number }) => Promise<void>,
): Promise<void> {
  await mkdir(OUTPUT, { recursive: true });
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  try {
    for (const [width, viewport] of VIEWPORTS) {
      const tab = await browser.newPage({ viewport });
      await tab.goto(`file://${file}`);
      await check(tab, viewport);
      // Nothing wider than the screen on a phone.
      const scrollWidth = await tab.evaluate(
        () =>
          (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } })
            .document.documentElement.scrollWidth,
      );
      if (scrollWidth > viewport.width)
        throw new Error(`${name} is ${scrollWidth}px wide on a ${viewport.width}px screen`);
      await tab.screenshot({ path: join(OUTPUT, `${name}-${width}.png`), fullPage: true });
      await tab.close();
    }
  } finally {
    await browser.close();
  }
}
