// The editor preview's pacing and content: nothing while off, at most one message a second per node (the latest
// offered wins), the answer cut short, the thumbnail made only for what is sent.
import * as assert from 'assert';
import { Preview, PREVIEW_TEXT_CHARS, PreviewMessage, previewMessage, truncated } from '../../../nodes/shared/preview';
import { clipOptions, encodePng, paintedImage } from '../../support/synthetic-images';
import { preprocessImage } from '../../../lib/pipeline/image-preprocess';
import { loadedPixels } from '../../../lib/pipeline/image-values';
import sharp from 'sharp';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recorder(on: boolean, intervalMs: number) {
  const sent: Array<PreviewMessage & { sentAt: number }> = [];
  const errors: unknown[] = [];
  const preview = new Preview(
    on,
    (m) => sent.push({ ...m, sentAt: Date.now() }),
    (e) => errors.push(e),
    intervalMs,
  );
  return { preview, sent, errors };
}

describe('nodes/shared editor preview', function () {
  it('sends nothing while off, and nothing offered before it was switched on', async function () {
    const { preview, sent } = recorder(false, 50);
    for (let i = 0; i < 5; i++) preview.offer({ text: `answer ${i}` });
    await sleep(120);
    assert.strictEqual(sent.length, 0);
    preview.enabled = true;
    await sleep(20);
    assert.strictEqual(sent.length, 0, 'frames offered while off are not kept for later');
    preview.offer({ text: 'now' });
    await sleep(20);
    assert.deepStrictEqual(
      sent.map((m) => m.text),
      ['now'],
    );
    preview.close();
  });

  it('at most one a second per node: the first at once, then the latest offered at the end of the second', async function () {
    this.timeout(10_000);
    const { preview, sent, errors } = recorder(true, 1000);
    const other = recorder(true, 1000);
    const started = Date.now();
    // 25 answers over 2.4 s (faster than the model of any flow would give them).
    for (let i = 0; i < 25; i++) {
      preview.offer({ text: `answer ${i}` });
      if (i % 5 === 0) other.preview.offer({ text: `other ${i}` });
      await sleep(100);
    }
    await sleep(1200);
    preview.close();
    other.preview.close();
    assert.deepStrictEqual(errors, []);
    assert.ok(sent.length >= 2 && sent.length <= 4, `${sent.length} sent in ${Date.now() - started} ms`);
    for (let i = 1; i < sent.length; i++) {
      assert.ok(sent[i].sentAt - sent[i - 1].sentAt >= 990, `${sent[i].sentAt - sent[i - 1].sentAt} ms between two`);
    }
    assert.strictEqual(sent[0].text, 'answer 0', 'the first goes at once');
    assert.strictEqual(sent[sent.length - 1].text, 'answer 24', 'the last answer is not lost');
    // Each message carries the time its answer was offered, not when it was sent.
    assert.ok(sent.every((m) => m.at <= m.sentAt));
    // Another node is paced on its own.
    assert.strictEqual(other.sent[0].text, 'other 0');
    assert.ok(other.sent.length >= 2);
  });

  it('switching off drops what waits', async function () {
    const { preview, sent } = recorder(true, 200);
    preview.offer({ text: 'a' });
    await sleep(20);
    preview.offer({ text: 'b' });
    preview.enabled = false;
    await sleep(300);
    assert.deepStrictEqual(
      sent.map((m) => m.text),
      ['a'],
    );
  });

  it('a message: the thumbnail as a JPEG data URI, the answer on one line and cut short', async function () {
    const options = clipOptions('pad', 200);
    const image = await preprocessImage(await encodePng(paintedImage(300, 100, [10, 200, 10], [])), options);
    const long = `a green\nbanner ${'very '.repeat(40)}wide`;
    const m = await previewMessage({ image: loadedPixels(image, 'pad'), scale: options, text: long, ms: 12.4 }, 1234);
    assert.strictEqual(m.at, 1234);
    assert.strictEqual(m.ms, 12);
    assert.ok(m.text?.startsWith('a green banner very'));
    assert.strictEqual(Array.from(m.text ?? '').length, PREVIEW_TEXT_CHARS + 1);
    assert.ok(m.text?.endsWith('…'));
    const match = /^data:image\/jpeg;base64,(.+)$/.exec(m.image ?? '');
    assert.ok(match, 'a JPEG data URI');
    const meta = await sharp(Buffer.from(match[1], 'base64')).metadata();
    assert.deepStrictEqual([meta.format, meta.width, meta.height, m.width, m.height], ['jpeg', 160, 160, 160, 160]);
    assert.strictEqual(truncated('  short  '), 'short');
    const noImage = await previewMessage({ image: { handle: {}, projected: true }, text: 'x' }, 1);
    assert.deepStrictEqual(noImage, { at: 1, text: 'x' });
  });
});
