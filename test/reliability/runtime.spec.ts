// Issue #7, runtime: the inference worker crashing in the middle of a generation, a redeploy while generating,
// two flows sharing one model at once, and a job that ignores its abort while Node-RED closes the flow.
import { strict as assert } from 'assert';
import * as path from 'path';
import { LlavaModel } from '../../lib/pipeline/llava-model';
import { renderTemplate } from '../../lib/pipeline/templates';
import { getRuntime } from '../../lib/runtime';
import { helper } from '../support/node-red';
import { tinyModel } from '../support/tiny-model';
import { catchTab, delay, frame, handlesSettle, Ledger, llavaNodes, modelConfig, modelSettled, Msg, pipeline } from './support';

const FAULTS = path.join(__dirname, 'fixtures', 'fault-tasks.js');

describe('reliability: runtime', function () {
  const tiny = () => tinyModel({ layout: 'split', decoder: 'portable' });
  let frames: Buffer[];
  const longGeneration = { maxNewTokens: '400', ignoreEos: true };
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  before(async () => {
    frames = await Promise.all([0, 1, 2, 3].map((i) => frame(i + 20)));
    process.on('unhandledRejection', onUnhandled);
    await helper.startServer();
  });
  afterEach(async () => {
    await helper.unload();
    assert.deepEqual(unhandled, [], 'no unhandled rejections');
  });
  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    await helper.stopServer();
    await getRuntime().dispose();
  });

  const flow = (generate: Msg = {}) => [...catchTab(), modelConfig('model', tiny().dir), ...pipeline('a', 'model', { generate })];

  it('a worker crash mid-generation fails the messages in flight with the reason; the next message works', async () => {
    await helper.load(llavaNodes, flow(longGeneration) as any);
    await modelSettled('model');
    const runtime = getRuntime();
    const restarts = runtime.stats().workerRestarts;
    const ledger = new Ledger({ outputs: ['aout'], errors: ['caught'], dropped: ['adropped'] });
    await runtime.registerTaskModule(FAULTS);
    await runtime.task('crashOnNextEvent', { code: 9 });
    const inFlight = ['m0', 'm1', 'm2'];
    inFlight.forEach((tag, i) => helper.getNode('aload').receive({ tag, payload: frames[i], question: 'what?' }));
    await ledger.settle(inFlight);
    // The one generating when the worker died fails with the reason (which one is first depends on decode order).
    const crashed = inFlight.map((t) => ledger.only(t)).filter((o) => /inference worker exited \(code 9\)/.test(o.msg.error?.message));
    assert.ok(crashed.length >= 1, 'the generation in progress fails with the worker exit');
    assert.ok(crashed.some((o) => o.msg.error.source.id === 'agenerate'));
    // The others were queued behind it: each ends once, in an output or an error saying their image features were
    // in the worker that died ("expired tensor handle …: it was made by an inference worker that has since exited").
    for (const tag of inFlight) {
      const o = ledger.only(tag);
      assert.ok(
        o.kind === 'output' || /inference worker (exited \(code 9\)|that has since exited)/.test(o.msg.error?.message),
        `${tag}: ${o.kind} ${o.msg.error?.message}`,
      );
    }
    assert.equal(runtime.stats().workerRestarts, restarts + 1);

    helper.getNode('aload').receive({ tag: 'after', payload: frames[3], question: 'what?', llava: { options: { maxNewTokens: 3 } } });
    await ledger.settle(['after']);
    assert.equal(ledger.only('after').kind, 'output', ledger.only('after').msg.error?.message);
    assert.equal(await handlesSettle(0), 0, 'no handles survive');
  });

  it('a redeploy while generating cancels the jobs, releases every handle, and the new flow works', async () => {
    const nodes = flow(longGeneration);
    await helper.load(llavaNodes, nodes as any);
    await modelSettled('model');
    const runtime = getRuntime();
    const baseline = runtime.stats().handles;
    const generating = new Promise((resolve) => helper.getNode('apartial').once('input', resolve));
    for (let i = 0; i < 6; i++) helper.getNode('aload').receive({ tag: `m${i}`, payload: frames[i % 4], question: 'what?' });
    await generating;
    assert.ok(runtime.stats().handles > baseline, 'image features of queued messages are held');

    let generationsStarted = 0;
    let previous = runtime.stats().running;
    const stopWatching = runtime.onStats((s) => {
      if (s.running === 'llm generate' && previous !== s.running) generationsStarted++;
      previous = s.running;
    });
    await helper.setFlows(nodes as any, 'full');
    // Without wall-clock bounds (another process can stretch any of them): the running generation stopped on its
    // abort (had it not, close would have waited out the grace time and warned), and none of the waiting ones ran.
    const spy = helper.log() as unknown as { args: Array<[{ level: number; msg: unknown }]>; WARN: number };
    const warned = spy.args.map((a) => a[0]).filter((e) => e.level === spy.WARN && /did not stop within the close grace time/.test(String(e.msg)));
    assert.deepEqual(warned, [], 'close did not wait out the grace time');
    const deadline = Date.now() + 10_000;
    while ((runtime.stats().running || runtime.stats().queued) && Date.now() < deadline) await delay(5);
    stopWatching();
    assert.deepEqual([runtime.stats().running, runtime.stats().queued], [null, 0], 'the old jobs are gone');
    assert.equal(generationsStarted, 0, 'no waiting generation ran after the redeploy');
    assert.equal(await handlesSettle(baseline), baseline, 'every image-feature handle released');

    await modelSettled('model');
    const ledger = new Ledger({ outputs: ['aout'], errors: ['caught'] });
    helper.getNode('aload').receive({ tag: 'after', payload: frames[0], question: 'what?', llava: { options: { maxNewTokens: 3 } } });
    await ledger.settle(['after']);
    assert.equal(ledger.only('after').kind, 'output', ledger.only('after').msg.error?.message);
  });

  it('two flows share one model concurrently: every answer equals the same request run alone', async () => {
    await helper.load(llavaNodes, [
      ...catchTab(),
      { id: 'tab2', type: 'tab' },
      modelConfig('model', tiny().dir),
      ...pipeline('a', 'model', { generate: { maxNewTokens: '6' } }),
      ...pipeline('b', 'model', { generate: { maxNewTokens: '6' }, tab: 'tab2' }),
    ] as any);
    await modelSettled('model');
    const questions = ['what is it?', 'which colour is the square?'];
    const requests = frames.flatMap((f, i) => questions.map((q, j) => ({ f, q, tag: `f${i}q${j}` })));
    const ledger = new Ledger({ outputs: ['aout', 'bout'], errors: ['caught'] });
    for (const r of requests) {
      helper.getNode('aload').receive({ tag: `a ${r.tag}`, payload: r.f, question: r.q });
      helper.getNode('bload').receive({ tag: `b ${r.tag}`, payload: r.f, question: r.q });
    }
    await ledger.settle(requests.flatMap((r) => [`a ${r.tag}`, `b ${r.tag}`]));

    const model = await LlavaModel.load(tiny().dir, { providers: 'cpu' });
    try {
      for (const r of requests) {
        const image = await model.project(await model.encodeImage(await model.preprocess(r.f)));
        const alone = await model.generate({ prompt: renderTemplate('vicuna_v1', { question: r.q }), image, options: { maxNewTokens: 6 } });
        for (const side of ['a', 'b']) {
          const o = ledger.only(`${side} ${r.tag}`);
          assert.equal(o.kind, 'output', o.msg.error?.message);
          assert.deepEqual(o.msg.llava.generation.tokenIds, alone.tokenIds, `${side} ${r.tag}`);
        }
      }
    } finally {
      model.close();
    }
  });

  it("a job that ignores its abort: close gives up after the grace time, inside Node-RED's 15 s close timeout", async () => {
    await helper.load(llavaNodes, flow(longGeneration) as any);
    await modelSettled('model');
    const runtime = getRuntime();
    await runtime.registerTaskModule(FAULTS);
    await runtime.task('stallOnNextEvent', { ms: 12_500 });
    helper.getNode('aload').receive({ tag: 'stalled', payload: frames[0], question: 'what?' });
    const deadline = Date.now() + 10_000;
    while (runtime.stats().running !== 'llm generate' && Date.now() < deadline) await delay(5);
    await delay(200); // the worker is now blocked inside the generation
    const started = Date.now();
    await helper.setFlows([], 'full'); // the flow is deleted and deployed (unload() would stop the log spy first)
    const closeMs = Date.now() - started;
    assert.ok(closeMs >= 9_500 && closeMs < 15_000, `close took ${closeMs} ms`);
    const spy = helper.log() as unknown as { args: Array<[{ level: number; id: string; msg: unknown }]>; WARN: number };
    const warned = spy.args.map((a) => a[0]).filter((e) => e.level === spy.WARN && e.id === 'agenerate');
    assert.deepEqual(
      warned.map((e) => String(e.msg)),
      ['running work did not stop within the close grace time; releasing anyway'],
    );
    // Once the worker wakes it sees the abort, ends the generation and frees what it held.
    assert.equal(await handlesSettle(0, 15_000), 0);
    const end = Date.now() + 5_000;
    while (runtime.stats().running && Date.now() < end) await delay(20);
    assert.equal(runtime.stats().running, null);
  });
});
