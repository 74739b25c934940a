// Issue #7, images: every hostile or unusual image sent through the whole node pipeline (image load → … →
// generate) ends in an output or in an error a Catch node receives that says what was wrong; the CLI gives one
// line on stderr and a non-zero exit for each bad image, quickly and in bounded memory, and still works after.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { getRuntime } from '../../lib/runtime';
import { helper, useNodeRedHelper } from '../support/node-red';
import { tinyModel } from '../support/tiny-model';
import {
  catchTab,
  CliRun,
  frame,
  handlesSettle,
  ImageCase,
  imageCases,
  inBatches,
  Ledger,
  llavaNodes,
  modelConfig,
  modelSettled,
  pipeline,
  runCli,
  stderrLines,
} from './support';

describe('reliability: images', function () {
  useNodeRedHelper();
  const tiny = () => tinyModel({ layout: 'split', decoder: 'portable' });
  let cases: ImageCase[];
  let dir: string;

  before(async () => {
    cases = await imageCases();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-rel-images-'));
  });
  after(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('node level: each image ends in a caption or in a caught error that names the problem', async () => {
    await helper.load(llavaNodes, [
      ...catchTab(),
      modelConfig('model', tiny().dir),
      ...pipeline('a', 'model'),
      ...pipeline('c', 'model', { load: { maxInputPixels: 1000 } }),
    ] as any);
    await modelSettled('model');
    const baseline = getRuntime().stats().handles;
    const ledger = new Ledger({ outputs: ['aout', 'cout'], errors: ['caught'], dropped: ['adropped', 'cdropped'] });
    // All at once, as a camera would: nothing may be lost or answered twice.
    for (const c of cases) helper.getNode('aload').receive({ tag: c.name, payload: c.bytes, question: 'what is it?' });
    const big = await frame(1);
    helper.getNode('cload').receive({ tag: 'over the configured cap', payload: big, question: 'what is it?' });
    await ledger.settle([...cases.map((c) => c.name), 'over the configured cap']);

    for (const c of cases) {
      const outcome = ledger.only(c.name);
      if (c.expect instanceof RegExp) {
        assert.equal(outcome.kind, 'error', `${c.name} must fail`);
        assert.match(outcome.msg.error.message, c.expect, `${c.name}: ${outcome.msg.error.message}`);
        assert.doesNotMatch(outcome.msg.error.message, /\n/, `${c.name}: one line`);
        assert.equal(outcome.msg.error.source.id, 'aload', `${c.name} fails at image load`);
      } else {
        assert.equal(outcome.kind, 'output', `${c.name}: ${outcome.msg.error?.message}`);
        const { pixels, generation } = outcome.msg.llava;
        assert.deepEqual([pixels.sourceWidth, pixels.sourceHeight], [c.expect.width, c.expect.height], `${c.name} decoded size`);
        assert.equal(generation.imageTokens, tiny().config.image_seq_length, c.name);
        assert.ok(generation.newTokens >= 1, c.name);
      }
    }
    const capped = ledger.only('over the configured cap');
    assert.equal(capped.kind, 'error');
    assert.match(capped.msg.error.message, /image is 64×48 .*above the maxInputPixels cap of 1000 /);
    assert.equal(await handlesSettle(baseline), baseline, 'no image features left in the runtime');
  });

  describe('CLI', function () {
    const cli = (image: string, extra: string[] = []) =>
      runCli(['generate', '--model', tiny().dir, '--image', image, '--provider', 'cpu', '--max-new-tokens', '3', '--json', ...extra]);
    const file = (name: string, bytes: Buffer) => {
      const f = path.join(dir, name.replace(/[^a-z0-9]+/gi, '-'));
      fs.writeFileSync(f, bytes);
      return f;
    };
    /** One line, "llava: <reason>", no stack; fast and in bounded memory. */
    const assertOneLineFailure = (run: CliRun, expected: RegExp, what: string) => {
      assert.equal(run.code, 1, `${what}: exit code (stderr: ${run.stderr})`);
      const lines = stderrLines(run);
      assert.equal(lines.length, 1, `${what}: one line on stderr, got:\n${run.stderr}`);
      assert.match(lines[0], /^llava: /, what);
      assert.match(lines[0].slice('llava: '.length), expected, what);
      assert.equal(run.stdout, '', `${what}: nothing on stdout`);
      assert.ok(run.cpuMs === null || run.cpuMs < 20_000, `${what} took ${run.cpuMs} ms of CPU (${run.ms} ms)`);
      if (run.peakMb !== null) assert.ok(run.peakMb < 1024, `${what} peaked at ${run.peakMb.toFixed(0)} MB`);
    };

    it('fails each bad image with one line and exit 1, captions each unusual one, then still works', async () => {
      tiny();
      const runs = await inBatches(cases, 4, (c) => cli(file(c.name, c.bytes)));
      cases.forEach((c, i) => {
        const run = runs[i];
        if (c.expect instanceof RegExp) {
          assertOneLineFailure(run, c.expect, c.name);
        } else {
          assert.equal(run.code, 0, `${c.name}: ${run.stderr}`);
          const json = JSON.parse(run.stdout.trim().split('\n').at(-1)!);
          assert.equal(json.image_token_count, tiny().config.image_seq_length, c.name);
          assert.ok(json.token_ids.length >= 1, c.name);
        }
      });
      const after = await cli(file('good.jpg', await frame(2)));
      assert.equal(after.code, 0, after.stderr);
    });

    it('refuses a bad image before loading the model: one line even with the default provider (no ORT probing output)', async () => {
      const run = await runCli(['generate', '--model', tiny().dir, '--image', file('junk.bin', Buffer.from('GIF89a but not really'))]);
      assertOneLineFailure(run, /not a decodable image: /, 'default provider');
      assert.ok(run.cpuMs === null || run.cpuMs < 5_000, `refused after ${run.cpuMs} ms of CPU (${run.ms} ms)`);
    });

    it('takes the pixel cap from --max-input-pixels and names it; --verbose adds the stack', async () => {
      const image = file('frame.jpg', await frame(3));
      assertOneLineFailure(await cli(image, ['--max-input-pixels', '1000']), /image is 64×48 .*maxInputPixels cap of 1000 /, 'lowered cap');
      const verbose = await cli(file('text.txt', Buffer.from('not an image')), ['--verbose']);
      assert.equal(verbose.code, 1);
      assert.match(verbose.stderr, /^llava: Error: not a decodable image/);
      assert.match(verbose.stderr, /\n\s+at /, '--verbose shows where it failed');
      const usage = await cli(image, ['--max-input-pixels', 'many']);
      assert.equal(usage.code, 2);
      assert.deepEqual(stderrLines(usage), ['llava: --max-input-pixels must be an integer, got "many"']);
      const missing = await cli(path.join(dir, 'no-such-file.jpg'));
      assertOneLineFailure(missing, /^cannot read image .*no-such-file\.jpg: ENOENT$/, 'missing file');
    });
  });
});
