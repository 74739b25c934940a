// The editor's Download (headless Chromium): import the caption example, type a Hub id into its llava-model
// dialog, press Download and watch the progress bar move (the files come from the Hub look-alike), then deploy
// and get a caption from the downloaded model.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import type { Browser } from 'playwright-core';
import sharp from 'sharp';
import { launchBrowser, openEditor, EditorPage } from '../support/browser';
import { confirm, deployAndCaption, importExample, openNode } from '../support/editor-steps';
import { HubServer, startHubServer } from '../support/hub-server';
import { RunningNodeRed, repoRoot, startNodeRed } from '../support/node-red';
import { multiVariantRepoDir, tempCache } from '../hub/support';

const SCREENSHOTS = process.env.LLAVA_SCREENSHOTS || path.join(repoRoot, '.cache', 'screenshots');
const REPO = 'llava-test/tiny-llava';

describe('editor: download a Hub model from the llava-model dialog, then caption with it (Chromium)', function () {
  let server: HubServer;
  let repoDir: string;
  let cacheDir: string;
  let nr: RunningNodeRed;
  let browser: Browser;
  let editor: EditorPage;

  before(async function () {
    repoDir = multiVariantRepoDir();
    cacheDir = tempCache();
    server = await startHubServer([{ repo: REPO, dir: repoDir }]);
    nr = await startNodeRed({ env: { HF_ENDPOINT: server.endpoint, HF_HUB_CACHE: cacheDir, HF_TOKEN: '', HF_HUB_OFFLINE: '' } });
    browser = await launchBrowser();
    editor = await openEditor(browser, nr.url, { paletteTypes: ['llava-generate'] });
  });
  after(async function () {
    await browser?.close();
    await nr?.stop();
    await server?.close();
    for (const d of [repoDir, cacheDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  it('shows the known models, downloads with a moving progress bar, and the caption example works after', async () => {
    const { page } = editor;
    const image = path.join(cacheDir, 'frame.jpg');
    await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 60, g: 180, b: 40 } } })
      .jpeg()
      .toFile(image);

    await importExample(page, 'caption');
    await openNode(page, 'llava-image-load');
    await page.click('#node-input-btn-model-edit');
    // The known models arrive from the admin endpoint; picking one fills the model and its per-graph variant.
    await page.waitForFunction(() => (globalThis as any).$('#llava-hub-known option').length > 1);
    await page.selectOption('#llava-hub-known', { index: 1 });
    assert.strictEqual(await page.inputValue('#node-config-input-modelDir'), 'llava-hf/llava-onevision-qwen2-0.5b-ov-hf');
    assert.strictEqual(await page.inputValue('#node-config-input-variant'), 'decoder_model_merged=q4,embed_tokens=fp16,vision_encoder=fp16');

    // Our test repo instead, slowed down so the bar can be watched.
    server.faults.chunkDelayMs = 150;
    await page.fill('#node-config-input-modelDir', REPO);
    await page.fill('#node-config-input-variant', 'auto');
    // Every width the bar takes, recorded in the page as it changes.
    await page.evaluate(() => {
      const g = globalThis as any;
      g.llavaBarSeen = [];
      const bar = g.document.getElementById('llava-hub-bar');
      new g.MutationObserver(() => g.llavaBarSeen.push(Number(bar.getAttribute('data-percent')))).observe(bar, { attributes: true });
    });
    await page.click('#llava-hub-download');
    await page.waitForFunction(() => (globalThis as any).llavaBarSeen.some((p: number) => p > 0 && p < 100));
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'hub-download.png') });
    await page.waitForFunction(
      () => {
        const $ = (globalThis as any).$;
        return $('#llava-hub-text').text().startsWith('downloaded:') || $('#llava-hub-error').is(':visible');
      },
      undefined,
      { timeout: 60_000 },
    );
    if (await page.isVisible('#llava-hub-error')) throw new Error(`download error: ${await page.textContent('#llava-hub-error')}`);
    const text = (await page.textContent('#llava-hub-text')) ?? '';
    const seen = new Set<number>(await page.evaluate(() => (globalThis as any).llavaBarSeen));
    const commit = server.repo(REPO).commit;
    assert.strictEqual(text, `downloaded: ${path.join(cacheDir, 'models--llava-test--tiny-llava', 'snapshots', commit)}`);
    const moving = [...seen].filter((p) => p > 0 && p < 100);
    assert.ok(moving.length >= 2, `the bar moved through intermediate values: ${[...seen].sort((a, b) => a - b).join(', ')}`);
    assert.strictEqual(await page.getAttribute('#llava-hub-bar', 'data-percent'), '100');
    assert.ok(await page.isHidden('#llava-hub-cancel'));
    server.faults.chunkDelayMs = 0;
    await confirm(page, '#node-config-dialog-ok');
    await confirm(page, '#node-dialog-ok');

    const caption = await deployAndCaption(page, image, () => nr.log());
    assert.ok(caption.length > 0, 'a caption in the debug sidebar');
    // The deploy used the cache: the files were fetched once, by the Download.
    for (const [name, bytes] of server.bytesSent) assert.strictEqual(bytes, server.repo(REPO).files.get(name)!.content.length, `${name} sent once`);
    assert.deepStrictEqual(editor.errors, []);
  });
});
