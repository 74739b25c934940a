// The dashboard example as shipped, in a real Node-RED with Node-RED Dashboard 2 (the devDependency) and the demo
// model, seen in headless Chromium: after each simulated camera's inject, /dashboard shows that camera's frame (the
// JPEG it sent, as a data URL), the caption the model gives for it, and the time it took; after a reload, still.
// LLAVA_UPDATE_SCREENSHOTS=1 writes the README's screenshot (docs/dashboard.png).
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { LlavaModel } from '../../lib/pipeline/llava-model';
import { CAPTION_INSTRUCTION, renderTemplate } from '../../lib/pipeline/templates';
import { getRuntime } from '../../lib/runtime';
import { launchBrowser } from '../support/browser';
import { RunningNodeRed, nodeRedDir, repoRoot, startNodeRed } from '../support/node-red';
import { requireSystemPackages } from '../support/system-packages';

const DEMO_MODEL_DIR = path.join(repoRoot, 'demo-model');
const DASHBOARD = '@flowfuse/node-red-dashboard';
const SCREENSHOT =
  process.env.LLAVA_UPDATE_SCREENSHOTS === '1'
    ? path.join(repoRoot, 'docs', 'dashboard.png')
    : path.join(process.env.LLAVA_SCREENSHOTS || path.join(repoRoot, '.cache', 'screenshots'), 'dashboard.png');
const WAIT_MS = 60_000;

interface Camera {
  injectId: string;
  name: string;
  frame: string;
}

interface Card {
  name: string;
  src: string;
  width: number;
  height: number;
  caption: string;
  time: string;
}

function dashboardFlow(): { flow: any[]; cameras: Camera[] } {
  const flow: any[] = JSON.parse(fs.readFileSync(path.join(repoRoot, 'examples', 'dashboard.json'), 'utf8'));
  const z = flow.find((n) => n.z)!.z;
  for (const n of flow) if (n.type === 'llava-model') Object.assign(n, { modelDir: DEMO_MODEL_DIR, provider: 'cpu', threads: 1 });
  const cameras = flow
    .filter((n) => n.type === 'inject')
    .map((n) => ({
      injectId: n.id,
      name: /^camera\/([^/]+)\/snapshot$/.exec(n.topic)![1],
      frame: n.payload,
    }));
  return { flow: [{ id: z, type: 'tab', label: 'camera dashboard' }, ...flow], cameras };
}

/**
 * Whether Node-RED loads Dashboard 2 by itself: it loads the node modules in the node_modules folder of every folder
 * above its own (the devDependency's case, and a Node-RED installed under this repository). Another one
 * (LLAVA_NODE_RED elsewhere) is given the devDependency's copy.
 */
function loadedBesideNodeRed(): boolean {
  for (let dir = nodeRedDir; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'node_modules', DASHBOARD, 'package.json'))) return true;
    if (path.dirname(dir) === dir) return false;
  }
}

/** The cards the dashboard shows, as the browser drew them. */
function cards(page: Page): Promise<Card[]> {
  return page.$$eval('.llava-camera', (els) =>
    els.map((el) => {
      const img = el.querySelector('img');
      return {
        name: el.getAttribute('data-camera') ?? '',
        src: img?.getAttribute('src') ?? '',
        width: img?.complete ? img.naturalWidth : 0,
        height: img?.complete ? img.naturalHeight : 0,
        caption: el.querySelector('.llava-caption')?.textContent?.trim() ?? '',
        time: el.querySelector('.llava-time')?.textContent?.trim() ?? '',
      };
    }),
  );
}

async function waitForCards(page: Page, count: number, nr: RunningNodeRed): Promise<Card[]> {
  const end = Date.now() + WAIT_MS;
  for (;;) {
    const shown = await cards(page);
    if (shown.length === count && shown.every((c) => c.width > 0 && c.caption)) return shown;
    if (Date.now() > end) throw new Error(`the dashboard shows ${JSON.stringify(shown.map((c) => ({ ...c, src: c.src.slice(0, 40) })))}\n${nr.log()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('package: the dashboard example in a browser (Dashboard 2 + demo model, Chromium)', function () {
  let nr: RunningNodeRed;
  let browser: Browser;
  let cameras: Camera[];
  /** Each camera's frame captioned in this process with the example's prompt: what the dashboard must show. */
  const expected = new Map<string, string>();

  before(async function () {
    requireSystemPackages(this, 'chromium');
    const built = dashboardFlow();
    cameras = built.cameras;
    const model = await LlavaModel.load(DEMO_MODEL_DIR, { providers: 'cpu', threads: 1 });
    try {
      const prompt = renderTemplate('mmpretrain_v1.5_caption', { question: CAPTION_INSTRUCTION, image: true });
      for (const c of cameras) {
        const jpeg = Buffer.from(c.frame.replace(/^data:image\/jpeg;base64,/, ''), 'base64');
        const embeds = await model.project(await model.encodeImage(await model.preprocess(jpeg)));
        expected.set(c.name, (await model.generate({ prompt, image: embeds })).text);
      }
    } finally {
      model.close();
      await getRuntime().dispose();
    }
    nr = await startNodeRed({ flows: built.flow, modules: loadedBesideNodeRed() ? [] : [path.dirname(require.resolve(`${DASHBOARD}/package.json`))] });
    browser = await launchBrowser();
  });
  after(async function () {
    await browser?.close();
    await nr?.stop();
  });

  it('ships two simulated cameras, each with its own small JPEG frame', async () => {
    assert.deepStrictEqual(
      cameras.map((c) => c.name),
      ['door', 'yard'],
    );
    for (const c of cameras) {
      assert.match(c.frame, /^data:image\/jpeg;base64,/);
      const meta = await sharp(Buffer.from(c.frame.split(',')[1], 'base64')).metadata();
      assert.strictEqual(meta.format, 'jpeg');
      assert.ok(Math.max(meta.width!, meta.height!) <= 320, `${c.name}: ${meta.width}×${meta.height}`);
    }
    assert.notStrictEqual(expected.get('door'), expected.get('yard'), 'the two frames get different captions');
  });

  it("shows each camera's frame, caption and time on /dashboard, live and after a reload", async () => {
    const sets: any[] = await (await fetch(`${nr.url}/nodes`, { headers: { Accept: 'application/json' } })).json();
    assert.ok(
      sets.some((s) => s.module === DASHBOARD && s.types.includes('ui-template') && !s.err),
      `${DASHBOARD} loaded\n${nr.log()}`,
    );

    const context = await browser.newContext({ viewport: { width: 900, height: 520 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
    });
    await page.goto(`${nr.url}/dashboard`, { waitUntil: 'load', timeout: WAIT_MS });
    await page.getByText('No frames yet').waitFor({ timeout: WAIT_MS });

    for (const c of cameras) {
      const res = await fetch(`${nr.url}/inject/${c.injectId}`, { method: 'POST' });
      assert.strictEqual(res.status, 200, `inject ${c.name}`);
    }
    const check = async (shown: Card[]) => {
      assert.deepStrictEqual(
        shown.map((c) => c.name),
        cameras.map((c) => c.name),
      );
      for (const [i, card] of shown.entries()) {
        const camera = cameras[i];
        const meta = await sharp(Buffer.from(camera.frame.split(',')[1], 'base64')).metadata();
        assert.strictEqual(card.src, camera.frame, `${card.name}: the frame shown is the frame the camera sent`);
        assert.deepStrictEqual([card.width, card.height], [meta.width, meta.height], card.name);
        assert.strictEqual(card.caption, expected.get(card.name), card.name);
        const seconds = /^captioned in (\d+\.\d\d) s · \S/.exec(card.time);
        assert.ok(seconds && Number(seconds[1]) > 0 && Number(seconds[1]) < WAIT_MS / 1000, `${card.name}: time "${card.time}"`);
      }
    };
    await check(await waitForCards(page, cameras.length, nr));

    await page.reload({ waitUntil: 'load', timeout: WAIT_MS });
    await check(await waitForCards(page, cameras.length, nr));

    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });
    assert.ok(fs.statSync(SCREENSHOT).size > 10_000);
    assert.deepStrictEqual(errors, []);
    await context.close();
  });
});
