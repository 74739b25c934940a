// The values that carry an image between flow stages: made by the model side, opaque to whoever carries them, and
// freed through the model that made them (its bookkeeping, so close() neither leaks nor frees twice).
import { strict as assert } from 'assert';
import sharp from 'sharp';
import { encodeImage, imageFeaturesOf, loadImage, projectImage, releaseImageValues } from '../../lib/pipeline/image-values';
import { LlavaModel } from '../../lib/pipeline/llava-model';
import { getRuntime } from '../../lib/runtime';
import { tinyModel } from '../support/tiny-model';

describe('pipeline image values (image load → clip encode → project → generate)', function () {
  let model: LlavaModel;
  let image: Buffer;
  before(async () => {
    model = await LlavaModel.load(tinyModel({ layout: 'split', decoder: 'portable' }).dir, { providers: 'cpu', threads: 1 });
    image = await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 200, g: 30, b: 90 } } })
      .png()
      .toBuffer();
  });
  after(async () => {
    model.close();
    await getRuntime().dispose();
  });

  it('pixels travel as a Buffer of float32 [1,3,s,s] with the mode and source size; encode reads them back exactly', async () => {
    const size = model.preset.preprocess.size;
    const { value, ms } = await loadImage(model, image);
    assert.ok(Buffer.isBuffer(value.data) && ms >= 0);
    assert.deepEqual(value.dims, [1, 3, size, size]);
    assert.equal(value.data.length, 3 * size * size * 4);
    assert.deepEqual([value.mode, value.sourceWidth, value.sourceHeight], [model.preset.preprocess.mode, 40, 30]);
    assert.equal((await loadImage(model, image, { mode: 'squash' })).value.mode, 'squash');
    // The same pixels straight into the model give the same features as the value does.
    const direct = await model.encodeImage(await model.preprocess(image));
    const viaValue = await encodeImage(model, value, 'msg.llava.pixels');
    const [a, b] = await Promise.all([getRuntime().get(direct.handle), getRuntime().get(viaValue.value.handle)]);
    assert.deepEqual(Array.from(a.data as Float32Array), Array.from(b.data as Float32Array));
    await releaseImageValues([{ handle: direct.handle, projected: direct.projected }, viaValue.value]);
  });

  it('a value that is not what the stage takes is an error naming where it came from', async () => {
    await assert.rejects(encodeImage(model, { data: 'x' }, 'msg.llava.pixels'), /msg\.llava\.pixels is not preprocessed pixels/);
    const { value } = await loadImage(model, image);
    await assert.rejects(
      encodeImage(model, { ...value, data: value.data.subarray(4) }, 'flow.frame'),
      /flow\.frame holds \d+ bytes; dims \[1, 3, \d+, \d+\] need \d+/,
    );
    await assert.rejects(projectImage(model, value, 'msg.llava.imageFeatures'), /msg\.llava\.imageFeatures is not image features/);
    assert.throws(() => imageFeaturesOf(42, 'msg.embeds'), /msg\.embeds is not image features/);
  });

  it('releaseImageValues frees features through their model: the handles go, other values are ignored, a second release is a no-op', async () => {
    const runtime = getRuntime();
    const baseline = runtime.stats().handles;
    const { value: pixels } = await loadImage(model, image);
    const features = await encodeImage(model, pixels, 'pixels');
    const embeds = await projectImage(model, (await encodeImage(model, pixels, 'pixels')).value, 'features');
    assert.equal(runtime.stats().handles, baseline + 2, 'project consumed its input');
    await releaseImageValues([features.value, 'text', null, pixels, embeds.value, { handle: 7 }]);
    assert.equal(runtime.stats().handles, baseline);
    await assert.rejects(runtime.get(features.value.handle), /expired tensor handle/);
    // Released once more (a message that fanned out): nothing left to free, and no error.
    await releaseImageValues([features.value]);
  });

  it('a model closed with features outstanding frees them; releasing them afterwards is a no-op', async () => {
    const other = await LlavaModel.load(tinyModel({ layout: 'split', decoder: 'portable' }).dir, { providers: 'cpu', threads: 1 });
    const runtime = getRuntime();
    const baseline = runtime.stats().handles;
    const features = await encodeImage(other, (await loadImage(other, image)).value, 'pixels');
    assert.equal(runtime.stats().handles, baseline + 1);
    other.close();
    for (const end = Date.now() + 5000; runtime.stats().handles !== baseline && Date.now() < end;) await new Promise((r) => setTimeout(r, 10));
    assert.equal(runtime.stats().handles, baseline);
    await releaseImageValues([features.value]);
    assert.equal(runtime.stats().handles, baseline);
  });
});
