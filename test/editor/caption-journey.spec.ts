// A new user's first caption, in a real editor (headless Chromium): import the caption example from the Examples
// menu, set the model folder in its config node, point the file node at an image, deploy, press the inject
// button, and read the caption in the debug sidebar. A screenshot of the result is saved.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Browser } from 'playwright-core';
import sharp from 'sharp';
import { launchBrowser, openEditor, EditorPage } from '../support/browser';
import { confirm, deployAndCaption, importExample, openNode } from '../support/editor-steps';
import { requireSystemPackages } from '../support/system-packages';
import { RunningNodeRed, repoRoot, startNodeRed } from '../support/node-red';
import { tinyModel } from '../support/tiny-model';

const SCREENSHOTS = process.env.LLAVA_SCREENSHOTS || path.join(repoRoot, '.cache', 'screenshots');

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
    await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 90, b: 20 } } })
      .jpeg()
      .toFile(image);
    const model = tinyModel({ layout: 'split', decoder: 'portable' });

    await importExample(page, 'caption');

    // The model folder, through image load's model selector ▸ edit.
    await openNode(page, 'llava-image-load');
    assert.strictEqual(await page.inputValue('#node-input-resizeMode'), 'model', 'the resize mode survives import');
    await page.click('#node-input-btn-model-edit');
    await page.fill('#node-config-input-modelDir', model.dir);
    await confirm(page, '#node-config-dialog-ok');
    await confirm(page, '#node-dialog-ok');

    const caption = await deployAndCaption(page, image, () => nr.log());
    assert.ok(caption.length > 0, 'a caption in the debug sidebar');

    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    const shot = path.join(SCREENSHOTS, 'caption-journey.png');
    await page.screenshot({ path: shot });
    assert.ok(fs.statSync(shot).size > 10_000);
    assert.deepStrictEqual(editor.errors, []);
  });
});
