// The inference worker's per-model state (tokenizers, JSON vocabularies, prefix KV caches) goes when the model's
// sessions close. Observable from outside: a folder rewritten in place with another model, loaded again under the
// same session keys, must generate exactly what that model does from a folder the worker has never seen.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { LlavaModel } from '../../lib/pipeline/llava-model';
import { InferenceRuntime } from '../../lib/runtime/runtime';
import { tinyModel, TinyModelOptions } from '../support/tiny-model';

describe('worker tasks: per-model caches are evicted when its sessions close', function () {
  let rt: InferenceRuntime;
  let dir: string;
  before(() => {
    // Grace 0: a released session closes at once, as it does after the grace period in a long-running Node-RED.
    rt = new InferenceRuntime({ graceMs: 0, threads: 1 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-evict-'));
  });
  after(async () => {
    await rt.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a model replaced in place generates what the new model does, not from the old tokenizer or prefix cache', async () => {
    const image = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#3070a0' } })
      .png()
      .toBuffer();
    const request = { image, question: 'What is it?', options: { maxNewTokens: 6, ignoreEos: true } };
    const folder = path.join(dir, 'model');
    const describe = async (from: string) => {
      const model = await LlavaModel.load(from, { runtime: rt });
      try {
        const first = await model.describe(request);
        const second = await model.describe(request);
        assert.ok(second.prefixReusedTokens > 0, 'the prefix cache is in use');
        return { text: first.text, ids: first.tokenIds, again: second.tokenIds };
      } finally {
        model.close();
      }
    };
    // Same tokenizer and prompt prefix, other weights (a stale prefix KV cache would be restored), then another
    // tokenizer (a stale one would decode the ids into other text).
    const models: TinyModelOptions[] = [{ seed: 3 }, { seed: 4 }, { arch: 'tiny-qwen2', seed: 3 }];
    for (const options of models) {
      const tiny = tinyModel(options);
      fs.rmSync(folder, { recursive: true, force: true });
      fs.cpSync(tiny.dir, folder, { recursive: true });
      const replaced = await describe(folder);
      const fresh = await describe(tiny.dir);
      assert.deepEqual(replaced, fresh, `${JSON.stringify(options)} loaded where another model was`);
    }
  });
});
