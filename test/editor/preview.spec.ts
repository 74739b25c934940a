// The preview under image load and llm generate, in a real editor (headless Chromium) on a real Node-RED: the
// caption example on the shipped demo model; nothing is sent while the switch is off (the default); switched on by
// the node's button, an inject shows under the node the frame as the model saw it (a JPEG at the model's input
// size) and the answer; the switch is saved by a deploy and still on in a reloaded editor; switched off, nothing
// more is sent. And the switch's endpoint refuses a user without the llava-preview.write permission.
// With LLAVA_UPDATE_SCREENSHOTS=1 the screenshot is written to docs/preview.png (the README's).
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Browser, Page } from 'playwright-core';
import sharp, { type Metadata } from 'sharp';
import { DEMO_SCENE_SEED, renderScene, scene } from '../../scripts/demo-model/scenes';
import { truncated } from '../../nodes/shared/preview';
import { launchBrowser, openEditor, EditorPage } from '../support/browser';
import { confirm, deployAndCaption, importExample, nodeIdOfType, notificationsGone, openNode, pressInject } from '../support/editor-steps';
import { requireSystemPackages } from '../support/system-packages';
import { RunningNodeRed, nodeRedDir, repoRoot, startNodeRed } from '../support/node-red';

const SCREENSHOTS =
  process.env.LLAVA_UPDATE_SCREENSHOTS === '1' ? path.join(repoRoot, 'docs') : process.env.LLAVA_SCREENSHOTS || path.join(repoRoot, '.cache', 'screenshots');
const DEMO_MODEL = path.join(repoRoot, 'demo-model');
/** Longer than the preview's one-a-second pacing: what was going to be sent has been. */
const QUIET_MS = 1500;

interface Recorded {
  topic: string;
  message: { at: number; ms?: number; image?: string; width?: number; height?: number; text?: string };
}

/** Records every preview message the page receives over Node-RED's comms. */
function recordPreviews(page: Page): Promise<void> {
  return page.evaluate(() => {
    const w = globalThis as any;
    w.__previews = [];
    w.RED.comms.subscribe('llava-preview/#', (topic: string, message: unknown) => w.__previews.push({ topic, message }));
  });
}

function recorded(page: Page): Promise<Recorded[]> {
  return page.evaluate(() => (globalThis as any).__previews);
}

/** Presses a node's button (its upper part: the input port lies over the middle) and waits for the notification. */
async function pressButton(page: Page, id: string, expect: RegExp): Promise<void> {
  await notificationsGone(page);
  await page.click(`g[id="${id}"] .red-ui-flow-node-button-button`, { position: { x: 3, y: 3 } });
  await page.waitForFunction((re: string) => new RegExp(re).test((globalThis as any).$('.red-ui-notification').text()), expect.source, { timeout: 10_000 });
}

/** How many captions the debug sidebar shows. */
function captionCount(page: Page): Promise<number> {
  return page.evaluate(() => (globalThis as any).$('.red-ui-debug-msg:has(.red-ui-debug-msg-name:contains("caption"))').length);
}

/** Presses inject and returns the newest caption in the debug sidebar once a new one has come (without quotes). */
async function injectForCaption(page: Page): Promise<string> {
  const before = await captionCount(page);
  await pressInject(page, await nodeIdOfType(page, 'inject'));
  const text = await page.waitForFunction(
    (n: number) => {
      const msgs = (globalThis as any).$('.red-ui-debug-msg:has(.red-ui-debug-msg-name:contains("caption"))');
      return msgs.length > n ? msgs.last().find('.red-ui-debug-msg-payload').text() : false;
    },
    before,
    { timeout: 60_000 },
  );
  return String(await text.jsonValue()).replace(/^"(.*)"$/s, '$1');
}

/** Saves the part of the workspace with the flow's nodes and what is drawn under them (nothing selected, no sidebar). */
async function screenshotFlow(page: Page, file: string): Promise<void> {
  await page.evaluate(() => {
    const RED = (globalThis as any).RED;
    RED.actions.invoke('core:select-none');
    RED.menu.setSelected('menu-item-sidebar', false);
  });
  await page.waitForTimeout(300);
  const box = await page.evaluate(() => {
    const rects = Array.from(document.querySelectorAll('#red-ui-workspace-chart .red-ui-flow-node-group')).map((g) => g.getBoundingClientRect());
    const chart = document.getElementById('red-ui-workspace-chart')!.getBoundingClientRect();
    const left = Math.max(chart.left, Math.min(...rects.map((r) => r.left)) - 30);
    const top = Math.max(chart.top, Math.min(...rects.map((r) => r.top)) - 20);
    const right = Math.min(chart.right - 20, Math.max(...rects.map((r) => r.right)) + 30);
    const bottom = Math.min(chart.bottom - 20, Math.max(...rects.map((r) => r.bottom)) + 20);
    return { x: left, y: top, width: right - left, height: bottom - top };
  });
  await page.screenshot({ path: file, clip: box });
  await page.evaluate(() => (globalThis as any).RED.menu.setSelected('menu-item-sidebar', true));
}

/** The preview drawn under a node: its image (href, size) and text lines, or null. */
function drawnPreview(page: Page, id: string): Promise<{ href: string | null; width: number; height: number; lines: string[] } | null> {
  return page.evaluate((nodeId: string) => {
    const g = document.getElementById(nodeId)?.querySelector(':scope > .llava-preview');
    if (!g) return null;
    const image = g.querySelector('image');
    return {
      href: image?.getAttribute('href') ?? null,
      width: Number(image?.getAttribute('width') ?? 0),
      height: Number(image?.getAttribute('height') ?? 0),
      lines: Array.from(g.querySelectorAll('text')).map((t) => t.textContent ?? ''),
    };
  }, id);
}

async function waitForPreview(page: Page, id: string, withImage: boolean) {
  await page.waitForFunction(
    ([nodeId, image]: [string, boolean]) => {
      const g = document.getElementById(nodeId)?.querySelector(':scope > .llava-preview');
      return !!g && (!image || !!g.querySelector('image'));
    },
    [id, withImage] as [string, boolean],
    { timeout: 30_000 },
  );
  const drawn = await drawnPreview(page, id);
  assert.ok(drawn);
  return drawn;
}

async function jpegOf(href: string | null): Promise<Metadata> {
  const match = /^data:image\/jpeg;base64,(.+)$/.exec(href ?? '');
  assert.ok(match, `a JPEG data URI, got ${href?.slice(0, 40)}`);
  return sharp(Buffer.from(match[1], 'base64')).metadata();
}

describe('editor: the preview under image load and llm generate (Chromium)', function () {
  let nr: RunningNodeRed;
  let browser: Browser;
  let editor: EditorPage;
  let dir: string;
  let generateId: string;
  let imageLoadId: string;
  const modelSide = JSON.parse(fs.readFileSync(path.join(DEMO_MODEL, 'config.json'), 'utf8')).vision_config.image_size as number;

  before(async function () {
    requireSystemPackages(this, 'chromium');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-preview-'));
    nr = await startNodeRed();
    browser = await launchBrowser();
    editor = await openEditor(browser, nr.url, { paletteTypes: ['llava-generate'] });
  });
  after(async function () {
    await browser?.close();
    await nr?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('sends nothing while the switch is off (the default)', async () => {
    const { page } = editor;
    const image = path.join(dir, 'scene.png');
    fs.writeFileSync(image, await renderScene(scene(DEMO_SCENE_SEED)));
    await recordPreviews(page);
    await importExample(page, 'caption');
    await openNode(page, 'llava-image-load');
    await page.click('#node-input-btn-model-edit');
    await page.fill('#node-config-input-modelDir', DEMO_MODEL);
    await confirm(page, '#node-config-dialog-ok');
    await confirm(page, '#node-dialog-ok');
    generateId = await nodeIdOfType(page, 'llava-generate');
    imageLoadId = await nodeIdOfType(page, 'llava-image-load');
    const switches = await page.evaluate((ids: string[]) => ids.map((id) => (globalThis as any).RED.nodes.node(id).preview), [generateId, imageLoadId]);
    assert.ok(
      switches.every((on) => !on),
      `off in the example: ${JSON.stringify(switches)}`,
    );

    const caption = await deployAndCaption(page, image, () => nr.log());
    assert.ok(caption.length > 0);
    await page.waitForTimeout(QUIET_MS);
    assert.deepStrictEqual(await recorded(page), []);
    assert.strictEqual(await drawnPreview(page, generateId), null);
  });

  it('switched on: the frame as the model saw it and the answer appear under the node', async () => {
    const { page } = editor;
    await pressButton(page, generateId, /Preview under llm generate on/);
    const caption = await injectForCaption(page);
    const drawn = await waitForPreview(page, generateId, true);
    // The frame behind the answer: image load's pixels, at the model's input size (never enlarged, ≤ 160 px).
    const meta = await jpegOf(drawn.href);
    assert.deepStrictEqual([meta.format, meta.width, meta.height, drawn.width, drawn.height], ['jpeg', modelSide, modelSide, modelSide, modelSide]);
    assert.ok(modelSide <= 160);
    assert.match(drawn.lines[0], /^\d\d:\d\d:\d\d · \d+(\.\d)? m?s$/, 'its time and how long it took');
    assert.strictEqual(drawn.lines[1], truncated(caption), 'the answer');
    const messages = await recorded(page);
    assert.ok(messages.length >= 1 && messages.every((m) => m.topic === `llava-preview/${generateId}`), JSON.stringify(messages.map((m) => m.topic)));

    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    const shot = path.join(SCREENSHOTS, 'preview.png');
    await notificationsGone(page);
    await screenshotFlow(page, shot);
    assert.ok(fs.statSync(shot).size > 10_000);

    // Image load's own preview: the pixels it made, with how long decoding took and no answer.
    await pressButton(page, imageLoadId, /Preview under image load on/);
    await injectForCaption(page);
    const loaded = await waitForPreview(page, imageLoadId, true);
    const loadedMeta = await jpegOf(loaded.href);
    assert.deepStrictEqual([loadedMeta.width, loadedMeta.height], [modelSide, modelSide]);
    assert.strictEqual(loaded.lines.length, 1);
    await pressButton(page, imageLoadId, /Preview under image load off/);
    assert.strictEqual(await drawnPreview(page, imageLoadId), null, 'switched off: the drawing goes');
    assert.deepStrictEqual(editor.errors, []);
  });

  it('the switch is saved by a deploy: on in the deployed flow and in a reloaded editor, which gets the preview', async () => {
    const { page } = editor;
    await page.click('#red-ui-header-button-deploy');
    await page.waitForFunction(() => !(globalThis as any).RED.nodes.dirty());
    const flows = (await (await fetch(`${nr.url}/flows`)).json()) as Array<{ id: string; preview?: boolean }>;
    assert.deepStrictEqual([flows.find((n) => n.id === generateId)?.preview, flows.find((n) => n.id === imageLoadId)?.preview], [true, false]);
    await page.context().close();

    editor = await openEditor(browser, nr.url, { paletteTypes: ['llava-generate'] });
    const fresh = editor.page;
    // The flows arrive after the palette; the editor may open on another tab than the example's.
    await fresh.waitForFunction((id: string) => !!(globalThis as any).RED.nodes.node(id), generateId, { timeout: 60_000 });
    await fresh.evaluate((id: string) => (globalThis as any).RED.workspaces.show((globalThis as any).RED.nodes.node(id).z), generateId);
    await fresh.waitForFunction((id: string) => !!document.getElementById(id), generateId, { timeout: 60_000 });
    await recordPreviews(fresh);
    const state = await fresh.evaluate(
      (id: string) => ({
        preview: (globalThis as any).RED.nodes.node(id).preview,
        opacity: document.getElementById(id)?.querySelector('.red-ui-flow-node-button-button')?.getAttribute('fill-opacity'),
      }),
      generateId,
    );
    assert.deepStrictEqual(state, { preview: true, opacity: '1' });
    await fresh.evaluate(() => (globalThis as any).RED.sidebar.show('debug'));
    const caption = await injectForCaption(fresh);
    const drawn = await waitForPreview(fresh, generateId, true);
    assert.strictEqual(drawn.lines[1], truncated(caption));
  });

  it('switched off: nothing more is sent, and nothing is drawn', async () => {
    const page = editor.page;
    await page.waitForTimeout(QUIET_MS);
    await pressButton(page, generateId, /Preview under llm generate off/);
    assert.strictEqual(await drawnPreview(page, generateId), null);
    await page.evaluate(() => ((globalThis as any).__previews = []));
    await injectForCaption(page);
    await page.waitForTimeout(QUIET_MS);
    assert.deepStrictEqual(await recorded(page), []);
    assert.strictEqual(await drawnPreview(page, generateId), null);
    assert.deepStrictEqual(editor.errors, []);
  });
});

describe('editor: the preview switch needs the llava-preview.write permission', function () {
  let nr: RunningNodeRed;

  before(async function () {
    const bcrypt = require(require.resolve('bcryptjs', { paths: [nodeRedDir] }));
    const password = bcrypt.hashSync('secret-for-test', 4);
    nr = await startNodeRed({
      flows: [
        { id: 'tab1', type: 'tab', label: 'preview' },
        { id: 'gen1', type: 'llava-generate', z: 'tab1', preview: false, wires: [[], []] },
      ],
      settings: {
        adminAuth: {
          type: 'credentials',
          users: [
            { username: 'viewer', password, permissions: 'read' },
            { username: 'admin', password, permissions: '*' },
          ],
        },
      },
    });
  });
  after(() => nr?.stop());

  async function token(username: string, scope: string): Promise<string> {
    const res = await fetch(`${nr.url}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: 'node-red-admin', grant_type: 'password', scope, username, password: 'secret-for-test' }),
    });
    assert.strictEqual(res.status, 200, `token for ${username}`);
    return ((await res.json()) as { access_token: string }).access_token;
  }

  const post = (path: string, bearer?: string) =>
    fetch(`${nr.url}${path}`, { method: 'POST', headers: bearer ? { authorization: `Bearer ${bearer}` } : {} }).then((r) => r.status);

  it('refuses no user and a read-only user; a user with every permission switches it', async () => {
    assert.strictEqual(await post('/llava-preview/gen1/enable'), 401);
    const viewer = await token('viewer', 'read');
    assert.strictEqual(await post('/llava-preview/gen1/enable', viewer), 401);
    const admin = await token('admin', '*');
    assert.strictEqual(await post('/llava-preview/gen1/enable', admin), 200);
    assert.strictEqual(await post('/llava-preview/gen1/disable', admin), 201);
    assert.strictEqual(await post('/llava-preview/nosuchnode/enable', admin), 404);
    assert.strictEqual(await post('/llava-preview/gen1/sideways', admin), 404);
  });
});
