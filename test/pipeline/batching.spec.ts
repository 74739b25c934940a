// Continuous batching: generations running at the same time on one decoder share its decode steps. Sequences of
// different lengths share a batch left-padded; one joins mid-generation and one leaves early; every sequence's
// logits are those it gets decoded alone, and the pipeline gives each request the ids (and options) it gets alone.
import { strict as assert } from 'assert';
import sharp from 'sharp';
import { DecodeBatch } from '../../lib/pipeline/decode-batch';
import { KvDecoder } from '../../lib/pipeline/decoder';
import { kvShape } from '../../lib/pipeline/graph-check';
import { ImageFeatures, LlavaModel } from '../../lib/pipeline/llava-model';
import type { GenerationOptions } from '../../lib/pipeline/types';
import { getRuntime } from '../../lib/runtime';
import { wave } from '../onnx/support';
import { decoderSessions, RecordingSession } from '../support/decoder-sessions';
import { tinyModel } from '../support/tiny-model';

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('continuous batching', () => {
  after(() => getRuntime().dispose());

  for (const [decoderVariant, mode] of [
    ['optimized', 'shared'],
    ['portable', 'copy'],
  ] as const) {
    it(`${decoderVariant} graph (${mode} cache): a batch of different lengths, one joining and one leaving, gives each sequence its own logits`, async () => {
      const model = tinyModel({ decoder: decoderVariant });
      const { embed, decoder } = await decoderSessions(model);
      const shape = kvShape(model.config);
      const H = shape.hiddenSize;
      const recording = new RecordingSession(decoder);
      const batchDecoder = new KvDecoder(embed, recording, shape);
      assert.equal(await batchDecoder.useMode(mode), mode);
      let emptied = 0;
      const batch = new DecodeBatch(batchDecoder, () => emptied++);
      // Three prompts of 5, 3 and 7 positions, each prefilled alone, and a solo decoder for each as the reference.
      const prompts = [5, 3, 7].map((n, i) => wave(n * H, 0.3 + 0.2 * i));
      const tokens = [
        [3, 9, 4, 8, 1],
        [7, 2, 6, 5, 11],
        [12, 4, 9],
      ];
      const solo: KvDecoder[] = [];
      const joiners: KvDecoder[] = [];
      const first: Float32Array[] = [];
      for (const prompt of prompts) {
        const alone = new KvDecoder(embed, decoder, shape);
        const joiner = new KvDecoder(embed, decoder, shape);
        await alone.useMode(mode);
        await joiner.useMode(mode);
        const [a] = await alone.forward(prompt, prompt.length / H);
        const [b] = await joiner.forward(prompt, prompt.length / H);
        assert.ok(maxDiff(a, b) < 1e-5);
        solo.push(alone);
        joiners.push(joiner);
        first.push(a);
      }
      const firstKeys = joiners[0].state.data['past_key_values.0.key'];
      const members = [await batch.join(joiners[0].state, 8)];
      assert.equal(batchDecoder.state.data['past_key_values.0.key'], firstKeys, 'the first to join brings its cache: no copy');
      members.push(await batch.join(joiners[1].state, 8));
      const check = async (active: number[], step: number) => {
        const got = await Promise.all(active.map((s, i) => members[i].step(tokens[s][step - (s === 2 ? 2 : 0)])));
        for (const [i, s] of active.entries()) {
          const [want] = await solo[s].step([tokens[s][step - (s === 2 ? 2 : 0)]], [0]);
          assert.ok(maxDiff(got[i], want) < 1e-4, `sequence ${s}, step ${step}: ${maxDiff(got[i], want)}`);
        }
      };
      await check([0, 1], 0);
      await check([0, 1], 1);
      members.push(await batch.join(joiners[2].state, 8)); // the longest prompt joins mid-generation
      await check([0, 1, 2], 2);
      await check([0, 1, 2], 3);
      await members[1].leave(); // sequence 1 stops early; 0 and 2 go on
      members.splice(1, 1);
      const got = await Promise.all([members[0].step(tokens[0][4]), members[1].step(tokens[2][2])]);
      const [want0] = await solo[0].step([tokens[0][4]], [0]);
      const [want2] = await solo[2].step([tokens[2][2]], [0]);
      assert.ok(maxDiff(got[0], want0) < 1e-4 && maxDiff(got[1], want2) < 1e-4, 'after a sequence left');
      // One decoder run per step for the whole batch: 2, 2, 3, 3, then 2 sequences.
      assert.deepEqual(
        recording.runs.slice(-5).map((r) => r.feeds.inputs_embeds.dims[0]),
        [2, 2, 3, 3, 2],
      );
      // Everyone leaves; a generation that took this batch before it emptied joins it afterwards and runs alone.
      await Promise.all(members.map((m) => m.leave()));
      assert.equal(emptied, 1);
      const late = new KvDecoder(embed, decoder, shape);
      const lateSolo = new KvDecoder(embed, decoder, shape);
      for (const d of [late, lateSolo]) {
        await d.useMode(mode);
        await d.forward(prompts[1], prompts[1].length / H);
      }
      const lateMember = await batch.join(late.state, 8);
      assert.equal(batchDecoder.state.data['past_key_values.0.key'], late.state.data['past_key_values.0.key'], 'alone again: no copy');
      const [wantLate] = await lateSolo.step([tokens[1][0]], [0]);
      assert.ok(maxDiff(await lateMember.step(tokens[1][0]), wantLate) < 1e-4, 'a member joining an emptied batch');
      assert.equal(recording.runs.at(-1)!.feeds.inputs_embeds.dims[0], 1, 'the emptied batch kept no row of its last member');
      await lateMember.leave();
      await Promise.all([embed.release(), decoder.release()]);
    });
  }

  it('a shared-cache prefill joining an empty copy-mode batch is copied into it and steps as it does alone', async () => {
    const model = tinyModel({ decoder: 'optimized' });
    const { embed, decoder } = await decoderSessions(model);
    const shape = kvShape(model.config);
    const recording = new RecordingSession(decoder);
    const batchDecoder = new KvDecoder(embed, recording, shape);
    assert.equal(await batchDecoder.useMode('copy'), 'copy');
    const batch = new DecodeBatch(batchDecoder, () => {});
    const prompt = wave(5 * shape.hiddenSize, 0.4);
    const [joiner, solo] = [new KvDecoder(embed, decoder, shape), new KvDecoder(embed, decoder, shape)];
    for (const d of [joiner, solo]) {
      assert.equal(await d.useMode('shared'), 'shared');
      d.reserve(16);
      await d.forward(prompt, 5);
    }
    const member = await batch.join(joiner.state, 8);
    const [want] = await solo.step([3], [0]);
    assert.ok(maxDiff(await member.step(3), want) < 1e-4);
    assert.deepEqual(recording.runs.at(-1)!.feeds.inputs_embeds.dims, [1, 1, shape.hiddenSize], 'one row: the empty cache added none');
    await member.leave();
    await Promise.all([embed.release(), decoder.release()]);
  });

  it('the pipeline: concurrent requests (each its own prompt, length, sampling and stop) get the ids they get alone', async () => {
    const model = tinyModel({ decoder: 'optimized' });
    const pixels = Buffer.from(Array.from({ length: 40 * 36 * 3 }, (_, i) => (i * 31) & 255));
    const image = await sharp(pixels, { raw: { width: 40, height: 36, channels: 3 } })
      .png()
      .toBuffer();
    const requests: Array<{ question: string; options: Partial<GenerationOptions> }> = [
      { question: 'What is it?', options: { maxNewTokens: 24, ignoreEos: true } },
      { question: 'Describe the picture in a few words, please.', options: { maxNewTokens: 9, ignoreEos: true } },
      { question: 'Colours?', options: { maxNewTokens: 7, ignoreEos: true, doSample: true, temperature: 0.9, seed: 5 } },
      { question: 'Count them.', options: { maxNewTokens: 5, ignoreEos: true, numBeams: 2 } },
    ];
    const run = async (batching: boolean, concurrent: boolean): Promise<Array<{ ids: number[]; batch?: number }>> => {
      const m = await LlavaModel.load(model.dir, { batching, warmup: false, prefixReuse: false });
      try {
        // The images first, so the generations reach the queue together (a vision job queued between them would
        // keep them apart: the queue stays first in, first out).
        const features: ImageFeatures[] = [];
        for (const _ of requests) features.push(await m.project(await m.encodeImage(await m.preprocess(image))));
        const ask = (r: (typeof requests)[number], i: number) =>
          m
            .generate({ prompt: m.prompt({ question: r.question, image: true }), image: features[i], options: r.options })
            .then((x) => ({ ids: x.tokenIds, batch: x.timings.decode_batch }));
        if (!concurrent) {
          const out: Array<{ ids: number[]; batch?: number }> = [];
          for (const [i, r] of requests.entries()) out.push(await ask(r, i));
          return out;
        }
        return await Promise.all(requests.map(ask));
      } finally {
        m.close();
      }
    };
    const alone = await run(false, false);
    const batched = await run(true, true);
    assert.deepEqual(
      alone.map((r) => r.ids.length),
      [24, 9, 7, 5],
    );
    assert.deepEqual(
      batched.map((r) => r.ids),
      alone.map((r) => r.ids),
    );
    // The three that can batch decoded beside each other (the first starts alone, the others join it as their
    // prefills finish); beam search ran alone, and nothing batches with batching off.
    assert.deepEqual(
      alone.map((r) => r.batch),
      [undefined, undefined, undefined, undefined],
    );
    assert.ok(
      batched.slice(0, 3).every((r) => r.batch! >= 2),
      JSON.stringify(batched.map((r) => r.batch)),
    );
    assert.equal(batched[3].batch, undefined);
  });
});
