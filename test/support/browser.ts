// Headless Chromium for editor tests: the OS's chromium driven by playwright-core (no browser download).
import { chromium, Browser, Page } from 'playwright-core';
import { findBinary } from './system-packages';

/** Flags that let Chromium run as root in a container without a GPU, a sandbox or network chatter. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-dev-shm-usage',
];

/** Launch it (a suite calls requireSystemPackages(this, 'chromium') in its before hook first). */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = findBinary('chromium');
  if (!executablePath) throw new Error('chromium is not installed (see test/support/system-packages.ts)');
  return chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
}

const EDITOR_LOAD_MS = 120_000;

export interface EditorPage {
  page: Page;
  /** Uncaught page errors and console errors seen so far. */
  errors: string[];
}

/** Open the Node-RED editor at `url` and wait until the palette shows every type in `paletteTypes`. */
export async function openEditor(
  browser: Browser,
  url: string,
  options: { paletteTypes?: string[]; colorScheme?: 'light' | 'dark' } = {},
): Promise<EditorPage> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, colorScheme: options.colorScheme ?? 'light' });
  // Node-RED 5's appearance setting (browser-local): "auto" follows the colour scheme; Node-RED 4 ignores it.
  await context.addInitScript(() => (globalThis as any).localStorage.setItem('view-dark-theme', 'auto'));
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()} (${msg.location().url})`);
  });
  page.on('requestfailed', (req) => errors.push(`request failed: ${req.url()} ${req.failure()?.errorText ?? ''}`));
  // Generous: the editor's first load compiles a lot of script, and a loaded 2-core machine makes that slow.
  await page.goto(url, { waitUntil: 'load', timeout: EDITOR_LOAD_MS });
  const types = options.paletteTypes ?? [];
  try {
    await page.waitForFunction(
      (wanted: string[]) => {
        const $ = (globalThis as any).$;
        if (!$ || !(globalThis as any).RED?.nodes || $('.red-ui-palette-node').length === 0) return false;
        return wanted.every((t) => $(`.red-ui-palette-node[data-palette-type='${t}']`).length > 0);
      },
      types,
      { timeout: EDITOR_LOAD_MS },
    );
  } catch (err) {
    const missing = await page
      .evaluate((wanted: string[]) => wanted.filter((t) => !(globalThis as any).$?.(`.red-ui-palette-node[data-palette-type='${t}']`).length), types)
      .catch(() => types);
    throw new Error(`the editor at ${url} did not show palette nodes ${missing.join(', ')} (${(err as Error).message}); ${errors.join('; ')}`);
  }
  return { page, errors };
}
