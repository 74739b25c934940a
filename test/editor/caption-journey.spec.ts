// A new user's first caption, in a real editor (headless Chromium): import the caption example from the Examples
// menu, set the model folder in its config node, point the file node at an image, deploy, press the inject
// button, and read the caption in the debug sidebar. A screenshot of the result is saved.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { launchBrowser, openEditor, EditorPage } from '../support/browser';
import { requireSystemPackages } from '../support/system-packages';
import { RunningNodeRed, repoRoot, startNodeRed } from '../support/node-red';
import { tinyModel } from '../support/tiny-model';

const SCREENSHOTS = process.env.LLAVA_SCREENSHOTS || path.join(repoRoot, '.cache', 'screenshots');

function nodeIdOfType(page: Page, type: string): Promise<string> {
  return page.evaluate((t: string) => {
    let id = '';
    (globalThis as any).RED.nodes.eachNode((n: any) => {
      if (n.type === t) id = n.id;
    });
    return id;
  }, type);
}

/** Opens a node's edit dialog, as a double-click does (a notification may cover the node itself). */
async function openNode(page: Page, type: string): Promise<void> {
  const id = await nodeIdOfType(page, type);
  await page.evaluate((nodeId: string) => {
    const RED = (globalThis as any).RED;
    RED.editor.edit(RED.nodes.node(nodeId));
  }, id);
  await page.waitForSelector('#node-dialog-ok', { state: 'visible' });
}

/** Presses a dialog's button and waits until its tray has closed (the editor opens no other dialog meanwhile). */
async function confirm(page: Page, button: string): Promise<void> {
  await page.click(button);
  await page.waitForSelector(button, { state: 'hidden' });
}

/** Waits until no notification (imported, deployed…) lies over the workspace. */
function notificationsGone(page: Page): Promise<unknown> {
  return page.waitForFunction(() => (globalThis as any).$('.red-ui-notification:visible').length === 0, undefined, { timeout: 30_000 });
}

/**
 * Clicks an inject node's button until Node-RED confirms it ("Successfully injected"): on a loaded machine the
 * workspace can still be moving (sidebar switch) when the click lands.
 */
async function pressInject(page: Page, id: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    await notificationsGone(page);
    await page.click(`g[id="${id}"] .red-ui-flow-node-button`);
    const confirmed = await page
      .waitForFunction(() => /Successfully injected/.test((globalThis as any).$('.red-ui-notification').text()), undefined, { timeout: 5_000 })
      .then(() => true, () => false);
    if (confirmed) return;
  }
  throw new Error('the inject button never confirmed an injection');
}

describe('editor: the caption example, from import to a caption in the debug sidebar (Chromium)', function () {
  let nr: RunningNodeRed;
  let browser: Browser;
  let editor: EditorPage;
  let dir: string;

  before(async function () {
    requireSystemPackages(this, 'chromium');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-journey-'));
    nr = await startNodeRed();
    browser = await launchBrowser();
    editor = await openEditor(browser, nr.url, { paletteTypes: ['llava-generate'] });
  });
  after(async function () {
    await browser?.close();
    await nr?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('imports, configures, deploys, injects and shows the caption', async () => {
    const { page } = editor;
    const image = path.join(dir, 'frame.jpg');
    await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 90, b: 20 } } }).jpeg().toFile(image);
    const model = tinyModel({ layout: 'split', decoder: 'portable' });

    // Import ▸ Examples ▸ node-red-contrib-llava ▸ caption
    await page.evaluate(() => (globalThis as any).RED.actions.invoke('core:show-import-dialog'));
    await page.click('#red-ui-tab-red-ui-clipboard-dialog-import-tab-examples a');
    await page.click('#red-ui-clipboard-dialog-import-tab-examples .red-ui-treeList-label:has-text("node-red-contrib-llava")');
    await page.click('#red-ui-clipboard-dialog-import-tab-examples .red-ui-treeList-label:has-text("caption")');
    await confirm(page, '#red-ui-clipboard-dialog-ok');
    await page.mouse.click(400, 300); // drop the imported nodes on the workspace

    // The model folder, through image load's model selector ▸ edit.
    await openNode(page, 'llava-image-load');
    assert.strictEqual(await page.inputValue('#node-input-resizeMode'), 'model', 'the resize mode survives import');
    await page.click('#node-input-btn-model-edit');
    await page.fill('#node-config-input-modelDir', model.dir);
    await confirm(page, '#node-config-dialog-ok');
    await confirm(page, '#node-dialog-ok');

    // The picture to caption.
    await openNode(page, 'file in');
    await page.fill('.form-row:has(#node-input-filename) input.red-ui-typedInput-input', image);
    await confirm(page, '#node-dialog-ok');

    await page.click('#red-ui-header-button-deploy');
    await page.waitForFunction(() => !(globalThis as any).RED.nodes.dirty());
    const generateId = await nodeIdOfType(page, 'llava-generate');
    await page.waitForFunction(
      (id: string) => /ready \(cpu\)/.test((globalThis as any).$(`g[id="${id}"] .red-ui-flow-node-status-label`).text()),
      generateId,
      { timeout: 60_000 },
    );

    await page.evaluate(() => (globalThis as any).RED.sidebar.show('debug'));
    await pressInject(page, await nodeIdOfType(page, 'inject'));
    const caption = await page
      .waitForFunction(
        () => {
          const $ = (globalThis as any).$;
          const msg = $('.red-ui-debug-msg').filter((_: number, e: Element) => $(e).find('.red-ui-debug-msg-name').text().includes('caption'));
          return msg.length ? msg.first().find('.red-ui-debug-msg-payload').text() : false;
        },
        undefined,
        { timeout: 60_000 },
      )
      .catch(async (err: Error) => {
        const sidebar = await page.evaluate(() => (globalThis as any).$('.red-ui-debug-msg').text());
        throw new Error(`${err.message}\ndebug sidebar: ${sidebar}\nNode-RED log:\n${nr.log().slice(-3000)}`);
      });
    assert.ok(String(await caption.jsonValue()).length > 0, 'a caption in the debug sidebar');

    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    const shot = path.join(SCREENSHOTS, 'caption-journey.png');
    await page.screenshot({ path: shot });
    assert.ok(fs.statSync(shot).size > 10_000);
    assert.deepStrictEqual(editor.errors, []);
  });
});
