// `llava generate` as a user runs it: a child process on tiny models in both layouts.
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { LlavaModel } from '../../lib/pipeline/llava-model';
import { getRuntime } from '../../lib/runtime';
import { repoRoot } from '../support/node-red';
import { tinyModel } from '../support/tiny-model';

const cli = path.join(repoRoot, 'dist', 'lib', 'cli.js');

function llava(args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('llava generate (CLI)', function () {
  let dir: string;
  let image: string;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-cli-'));
    image = path.join(dir, 'frame.jpg');
    await sharp({ create: { width: 80, height: 60, channels: 3, background: { r: 20, g: 160, b: 200 } } })
      .jpeg()
      .toFile(image);
  });
  after(async () => {
    await getRuntime().dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const layout of ['transformers-js', 'split'] as const) {
    it(`answers a question with a ${layout} model: one JSON line with the ids the pipeline generates`, async () => {
      const tiny = tinyModel({ layout, decoder: 'portable' });
      const r = llava([
        'generate',
        '--model',
        tiny.dir,
        '--image',
        image,
        '--prompt',
        'What colour?',
        '--max-new-tokens',
        '5',
        '--ignore-eos',
        '--provider',
        'cpu',
        '--json',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
      assert.deepEqual(Object.keys(out).sort(), ['finish_reason', 'image_token_count', 'prompt_token_count', 'provider', 'text', 'timings', 'token_ids']);
      assert.deepEqual(Object.keys(out.timings).sort(), [
        'decode_ms',
        'decode_tokens_per_s',
        'first_token_ms',
        'prefill_ms',
        'preprocess_ms',
        'projector_ms',
        'vision_ms',
      ]);
      const model = await LlavaModel.load(tiny.dir, { providers: 'cpu' });
      try {
        const expected = await model.describe({ image: fs.readFileSync(image), question: 'What colour?', options: { maxNewTokens: 5, ignoreEos: true } });
        assert.deepEqual(out.token_ids, expected.tokenIds);
        assert.equal(out.text, expected.text);
        assert.equal(out.prompt_token_count, expected.promptTokenCount);
        assert.equal(out.image_token_count, tiny.config.image_seq_length);
      } finally {
        model.close();
      }
      assert.equal(out.provider, 'cpu');
    });
  }

  it('streams the same text to stdout without --json', () => {
    const tiny = tinyModel({ layout: 'split', decoder: 'portable' });
    const base = ['generate', '--model', tiny.dir, '--image', image, '--max-new-tokens', '6', '--ignore-eos', '--provider', 'cpu'];
    const json = JSON.parse(
      llava([...base, '--json'])
        .stdout.trim()
        .split('\n')
        .at(-1)!,
    );
    const plain = llava(base);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout, `${json.text}\n`);
  });

  it('--max-time SECONDS: in the help; a limit already passed at the first token keeps that token, finish_reason time', () => {
    const help = llava(['generate', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /\[--max-time SECONDS\]/);
    assert.match(help.stdout, /--max-time stops the answer after SECONDS/);
    const tiny = tinyModel({ layout: 'split', decoder: 'portable' });
    const base = ['generate', '--model', tiny.dir, '--image', image, '--max-new-tokens', '40', '--ignore-eos', '--provider', 'cpu', '--json'];
    const cut = JSON.parse(
      llava([...base, '--max-time', '0.000001'])
        .stdout.trim()
        .split('\n')
        .at(-1)!,
    );
    const full = JSON.parse(
      llava([...base, '--max-time', '600'])
        .stdout.trim()
        .split('\n')
        .at(-1)!,
    );
    assert.deepEqual([cut.finish_reason, cut.token_ids.length], ['time', 1]);
    assert.deepEqual([full.finish_reason, full.token_ids.length], ['length', 40]);
    assert.deepEqual(cut.token_ids, full.token_ids.slice(0, 1), 'the text so far');
    assert.match(llava([...base, '--max-time', 'soon']).stderr, /--max-time must be a number, got "soon"/);
  });

  it('uses a prompt containing <image> as written', async () => {
    const tiny = tinyModel({ layout: 'split', decoder: 'portable' });
    const prompt = 'USER: <image>\nHow many? ASSISTANT:';
    const r = llava(['generate', '--model', tiny.dir, '--image', image, '--prompt', prompt, '--max-new-tokens', '2', '--provider', 'cpu', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    const model = await LlavaModel.load(tiny.dir, { providers: 'cpu' });
    try {
      const encoded = model.tokenizer.encodePrompt(prompt, { imageTokenCount: out.image_token_count });
      assert.equal(out.prompt_token_count, encoded.ids.length);
    } finally {
      model.close();
    }
  });

  it('reports a bad request in one line on stderr with a non-zero exit, the stack only with --verbose', () => {
    const missing = llava(['generate', '--model', path.join(dir, 'nope'), '--image', image]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /model folder not found/);
    assert.equal(
      missing.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('llava')).length,
      1,
    );
    assert.doesNotMatch(missing.stderr, /^\s+at /m);
    const verbose = llava(['generate', '--model', path.join(dir, 'nope'), '--image', image, '--verbose']);
    assert.match(verbose.stderr, /^\s+at /m);
    const usage = llava(['generate', '--model', 'x', '--image', image, '--greedy', '--temperature', '0.7']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--greedy cannot be combined with --temperature/);
  });

  it('--json-schema FILE|JSON and --format json print the parsed answer; a cut-off answer or a bad schema is an error', () => {
    const tiny = tinyModel({ layout: 'split', decoder: 'portable' });
    const schema = {
      type: 'object',
      properties: { person: { type: 'boolean' }, count: { type: 'integer', minimum: 0, maximum: 9 } },
      required: ['person', 'count'],
      additionalProperties: false,
    };
    const file = path.join(dir, 'doorbell.schema.json');
    fs.writeFileSync(file, JSON.stringify(schema));
    const base = ['generate', '--model', tiny.dir, '--image', image, '--provider', 'cpu', '--max-new-tokens', '60'];
    for (const given of [file, JSON.stringify(schema)]) {
      const r = llava([...base, '--json-schema', given]);
      assert.equal(r.code, 0, r.stderr);
      const value = JSON.parse(r.stdout.trim());
      assert.deepEqual(Object.keys(value).sort(), ['count', 'person']);
      assert.equal(typeof value.person, 'boolean');
      assert.ok(Number.isInteger(value.count) && value.count >= 0 && value.count <= 9);
    }
    const report = JSON.parse(
      llava([...base, '--json-schema', file, '--json'])
        .stdout.trim()
        .split('\n')
        .at(-1)!,
    );
    assert.deepEqual(report.value, JSON.parse(report.text));
    const any = llava([...base, '--format', 'json', '--max-new-tokens', '3']);
    assert.notEqual(any.code, 0);
    assert.match(any.stderr, /cut off by the token limit \(3 tokens\).*partial text: \{/);
    const unsupported = llava([...base, '--json-schema', '{"type":"string","format":"uri"}']);
    assert.equal(unsupported.code, 2);
    assert.match(unsupported.stderr, /unsupported keyword "format"/);
    assert.match(llava([...base, '--json-schema', path.join(dir, 'missing.json')]).stderr, /neither a readable file \(ENOENT\) nor a JSON schema/);
    assert.match(llava([...base, '--format', 'yaml']).stderr, /--format must be text or json/);
  });
});
