// `llava serve` with the official openai client, as any OpenAI-compatible consumer would use it: the same caption
// as `llava generate` on the same model and image, streamed or not; bad requests get OpenAI-shaped 4xx errors and
// the server keeps serving.
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import OpenAI from 'openai';
import sharp from 'sharp';
import { CAPTION_INSTRUCTION } from '../../lib/pipeline/templates';
import { tinyModel } from '../support/tiny-model';
import { cli, Served, startServe } from './support';

function llava(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000, env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout.trim().split('\n').at(-1)!) };
}

function imageMessage(dataUri: string, text = CAPTION_INSTRUCTION) {
  return [
    {
      role: 'user' as const,
      content: [
        { type: 'image_url' as const, image_url: { url: dataUri } },
        { type: 'text' as const, text },
      ],
    },
  ];
}

async function apiError(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof OpenAI.APIError, `expected an APIError, got ${err}`);
    return err;
  }
  assert.fail('the request succeeded');
}

describe('llava serve (OpenAI-compatible server)', function () {
  this.timeout(180_000);
  let dir: string;
  let image: string;
  let dataUri: string;
  let served: Served;
  let client: OpenAI;
  let model: string;
  let modelName: string;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-serve-'));
    image = path.join(dir, 'frame.jpg');
    await sharp({ create: { width: 80, height: 60, channels: 3, background: { r: 20, g: 160, b: 200 } } })
      .jpeg()
      .toFile(image);
    dataUri = `data:image/jpeg;base64,${fs.readFileSync(image).toString('base64')}`;
    model = tinyModel({ layout: 'split', decoder: 'portable' }).dir;
    modelName = path.basename(model);
    served = await startServe(model);
    client = new OpenAI({ baseURL: `${served.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await served?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists its model and reports health', async () => {
    const models = await client.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      [modelName],
    );
    assert.deepEqual(await (await fetch(`${served.url}/health`)).json(), { status: 'ok' });
  });

  it('captions an image exactly as `llava generate` does (greedy), with usage counts; streamed deltas join to the same text', async () => {
    const local = llava(['generate', '--model', model, '--image', image, '--greedy', '--max-new-tokens', '10', '--provider', 'cpu', '--json']);
    assert.equal(local.code, 0, local.stderr);
    const expected = local.json();
    assert.ok(expected.text.length > 0, 'the tiny model generated some text');

    const plain = await client.chat.completions.create({ model: modelName, messages: imageMessage(dataUri), temperature: 0, max_tokens: 10 });
    assert.equal(plain.object, 'chat.completion');
    assert.equal(plain.choices[0].message.content, expected.text);
    assert.equal(plain.choices[0].finish_reason, expected.finish_reason === 'length' ? 'length' : 'stop');
    assert.deepEqual(plain.usage, {
      prompt_tokens: expected.prompt_token_count,
      completion_tokens: expected.token_ids.length,
      total_tokens: expected.prompt_token_count + expected.token_ids.length,
    });

    const stream = await client.chat.completions.create({
      model: modelName,
      messages: imageMessage(dataUri),
      temperature: 0,
      max_tokens: 10,
      stream: true,
      stream_options: { include_usage: true },
    });
    const deltas: string[] = [];
    let finish: string | null = null;
    let usage: unknown = null;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (choice?.delta.content) deltas.push(choice.delta.content);
      if (choice?.finish_reason) finish = choice.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.ok(deltas.length > 1, 'the answer arrived in several pieces');
    assert.equal(deltas.join(''), expected.text);
    assert.equal(finish, plain.choices[0].finish_reason);
    assert.deepEqual(usage, plain.usage);
  });

  it('`llava generate --engine` through the server gives the local text', () => {
    const local = llava([
      'generate',
      '--model',
      model,
      '--image',
      image,
      '--prompt',
      'What colour?',
      '--greedy',
      '--max-new-tokens',
      '8',
      '--provider',
      'cpu',
      '--json',
    ]).json();
    const base = [
      'generate',
      '--engine',
      served.url,
      '--engine-model',
      modelName,
      '--image',
      image,
      '--prompt',
      'What colour?',
      '--greedy',
      '--max-new-tokens',
      '8',
    ];
    const remote = llava([...base, '--json']);
    assert.equal(remote.code, 0, remote.stderr);
    const out = remote.json();
    assert.equal(out.text, local.text);
    assert.equal(out.usage.completionTokens, local.token_ids.length);
    const streamed = llava(base);
    assert.equal(streamed.stdout, `${local.text}\n`);
    const unsupported = llava([...base, '--num-beams', '2']);
    assert.equal(unsupported.code, 1);
    assert.match(unsupported.stderr, /beam search/);
  });

  it('answers bad requests with OpenAI-shaped 4xx errors and keeps serving', async () => {
    const noImage = await apiError(client.chat.completions.create({ model: modelName, messages: [{ role: 'user', content: 'hello' }] }));
    assert.equal(noImage.status, 400);
    assert.match(noImage.message, /one image per request/);
    assert.equal(noImage.type, 'invalid_request_error');

    const unknown = await apiError(client.chat.completions.create({ model: 'gpt-4o', messages: imageMessage(dataUri) }));
    assert.equal(unknown.status, 404);
    assert.equal(unknown.code, 'model_not_found');

    const huge = await apiError(
      client.chat.completions.create({ model: modelName, messages: imageMessage(`data:image/jpeg;base64,${'A'.repeat(50 * 1024 * 1024)}`) }),
    );
    assert.equal(huge.status, 413, `${huge.constructor.name}: ${huge.message} ${(huge as any).cause}`);
    assert.match(huge.message, /larger than/);

    const remoteUrl = await apiError(client.chat.completions.create({ model: modelName, messages: imageMessage('http://127.0.0.1:9/cat.jpg') }));
    assert.equal(remoteUrl.status, 400);
    assert.match(remoteUrl.message, /data URI/);

    const notAnImage = await apiError(client.chat.completions.create({ model: modelName, messages: imageMessage('data:image/jpeg;base64,aGVsbG8=') }));
    assert.equal(notAnImage.status, 400);
    assert.match(notAnImage.message, /not a decodable image/);

    const badJson = await fetch(`${served.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": ' });
    assert.equal(badJson.status, 400);
    const body = (await badJson.json()) as { error: { message: string; type: string } };
    assert.equal(body.error.type, 'invalid_request_error');
    assert.match(body.error.message, /JSON/);

    const after = await client.chat.completions.create({ model: modelName, messages: imageMessage(dataUri), temperature: 0, max_tokens: 3 });
    assert.equal(after.choices[0].finish_reason === 'length' || after.choices[0].finish_reason === 'stop', true);
    assert.ok(after.usage!.completion_tokens > 0);
    assert.equal(served.process.exitCode, null, 'the server is still running');
  });

  it('answers in JSON matching a response_format json_schema; a schema it cannot follow is a 400', async () => {
    const schema = { type: 'object', properties: { outdoor: { type: 'boolean' } }, required: ['outdoor'], additionalProperties: false };
    const r = await client.chat.completions.create({
      model: modelName,
      messages: imageMessage(dataUri, 'Is it outdoors?'),
      max_tokens: 40,
      response_format: { type: 'json_schema', json_schema: { name: 'scene', schema } },
    });
    const answer = JSON.parse(r.choices[0].message.content!);
    assert.deepEqual(Object.keys(answer), ['outdoor']);
    assert.equal(typeof answer.outdoor, 'boolean');
    const refused = await apiError(
      client.chat.completions.create({
        model: modelName,
        messages: imageMessage(dataUri),
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'x', schema: { type: 'object', properties: { a: { type: 'string', format: 'hostname-of-mars' } } } },
        },
      }),
    );
    assert.equal(refused.status, 400);
    assert.equal(refused.param, 'response_format');
  });

  it('with an API key (from the environment) refuses requests without it; the key is not printed', async () => {
    const secret = 'sk-test-not-logged-1234';
    const keyed = await startServe(model, ['--verbose'], { ...process.env, LLAVA_API_KEY: secret });
    try {
      const anonymous = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
      const refused = await apiError(anonymous.models.list());
      assert.equal(refused.status, 401);
      assert.equal((await fetch(`${keyed.url}/health`)).status, 200, '/health stays open for load balancers');
      const allowed = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: secret, maxRetries: 0 });
      const r = await allowed.chat.completions.create({ model: modelName, messages: imageMessage(dataUri), max_tokens: 2 });
      assert.ok(r.choices[0].message.content !== null);
      const viaCli = llava(['generate', '--engine', keyed.url, '--engine-model', modelName, '--image', image, '--max-new-tokens', '2', '--json'], {
        ...process.env,
        LLAVA_API_KEY: secret,
      });
      assert.equal(viaCli.code, 0, viaCli.stderr);
      assert.ok(!keyed.log().includes(secret) && !viaCli.stderr.includes(secret) && !viaCli.stdout.includes(secret));
    } finally {
      await keyed.stop();
    }
  });
});
