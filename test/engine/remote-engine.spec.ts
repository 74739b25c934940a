// The remote engine against real HTTP servers: `llava serve`'s server in this process (same text as the local
// engine), and small scripted servers that answer the way vLLM / llama-server / Ollama do when things go wrong
// (429/503, comment pings, resets, slow first tokens, error bodies).
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import sharp from 'sharp';
import { LocalEngine } from '../../lib/engine/local-engine';
import { OpenAiServer } from '../../lib/engine/openai-server';
import { openAiSampling, RemoteEngine, RemoteEngineError, TIME_LIMIT_GRACE_MS } from '../../lib/engine/remote-engine';
import type { Engine, EngineRequest } from '../../lib/engine/types';
import { LlavaModel } from '../../lib/pipeline/llava-model';
import { getRuntime } from '../../lib/runtime';
import { freePort } from '../support/node-red';
import { tinyModel } from '../support/tiny-model';

interface Script {
  url: string;
  requests: Array<{ body: any; headers: http.IncomingHttpHeaders }>;
  active: number;
  maxActive: number;
  closedEarly: number;
  close(): Promise<void>;
}

/** A real HTTP server whose n-th chat request (0-based) is answered by `answer`. */
async function scripted(
  answer: (n: number, res: http.ServerResponse, req: http.IncomingMessage) => void | Promise<void>,
  models: string[] = ['m'],
): Promise<Script> {
  const script: Script = { url: '', requests: [], active: 0, maxActive: 0, closedEarly: 0, close: async () => undefined };
  const server = http.createServer(async (req, res) => {
    if (req.url === '/v1/models') return res.end(JSON.stringify({ object: 'list', data: models.map((id) => ({ id, object: 'model' })) }));
    let raw = '';
    for await (const c of req) raw += c;
    const n = script.requests.length;
    script.requests.push({ body: JSON.parse(raw), headers: req.headers });
    script.active++;
    script.maxActive = Math.max(script.maxActive, script.active);
    res.on('close', () => {
      script.active--;
      if (!res.writableEnded) script.closedEarly++;
    });
    await answer(n, res, req);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  script.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  script.close = () =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return script;
}

const chunk = (content: string | null, finish: string | null = null, extra: object = {}) =>
  `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: content === null ? {} : { content }, finish_reason: finish }], ...extra })}\n\n`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function streamHead(res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.flushHeaders();
}

describe('remote engine (OpenAI-compatible client)', function () {
  this.timeout(60_000);
  let jpeg: Buffer;
  const request = (over: Partial<EngineRequest> = {}): EngineRequest => ({ image: jpeg, chat: { question: 'What is it?' }, ...over });
  const engines: Engine[] = [];
  const remote = (url: string, options: Partial<ConstructorParameters<typeof RemoteEngine>[0]> = {}) => {
    const e = new RemoteEngine({ baseUrl: url, model: 'm', backoffMs: 10, ...options });
    engines.push(e);
    return e;
  };

  before(async () => {
    jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 30, b: 60 } } })
      .jpeg()
      .toBuffer();
  });
  afterEach(async () => {
    await Promise.all(engines.splice(0).map((e) => e.close()));
  });
  after(() => getRuntime().dispose());

  it("gives the local engine's text through `llava serve`'s server, streamed in pieces", async () => {
    const dir = tinyModel({ layout: 'split', decoder: 'portable' }).dir;
    const local = new LocalEngine(await LlavaModel.load(dir, { providers: 'cpu' }));
    const server = new OpenAiServer({ engine: local, modelName: 'tiny' });
    const { port } = await server.listen();
    try {
      const options = { maxNewTokens: 8, doSample: false };
      const expected = await local.generate(request({ options }));
      const pieces: string[] = [];
      const got = await remote(`http://127.0.0.1:${port}/v1`, { model: 'tiny' }).generate(
        request({ options, onEvent: (e) => e.type === 'text' && pieces.push(e.delta) }),
      );
      assert.ok(expected.text.length > 0);
      assert.equal(got.text, expected.text);
      assert.equal(pieces.join(''), expected.text);
      assert.equal(got.finishReason, expected.finishReason === 'length' ? 'length' : 'eos');
      assert.deepEqual(got.usage, expected.usage);
      assert.ok(got.timings.first_token_ms! > 0 && got.timings.total_ms >= got.timings.first_token_ms!);
    } finally {
      await server.close();
    }
  });

  it('sends the OpenAI request shape and retries 429 and 503 with back-off before streaming; SSE comments and split events are read', async () => {
    const s = await scripted(async (n, res) => {
      if (n === 0) return void res.writeHead(429, { 'retry-after': '0', 'content-type': 'application/json' }).end('{"error":{"message":"slow down"}}');
      if (n === 1) return void res.writeHead(503).end('{"error":"Loading model"}');
      streamHead(res);
      res.write(': ping\n\n');
      const body =
        chunk('Hel') +
        chunk('lo') +
        'data: {"object":"chat.completion.chunk",\ndata: "choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}]}\n\n' +
        `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 30, completion_tokens: 3, total_tokens: 33 } })}\n\ndata: [DONE]\n\n`;
      for (let i = 0; i < body.length; i += 7) {
        res.write(body.slice(i, i + 7));
        await sleep(1);
      }
      res.end();
    });
    try {
      const engine = remote(s.url, { apiKey: 'sk-secret' });
      const result = await engine.generate(
        request({
          chat: { question: 'What is it?', system: 'Be brief.' },
          options: { maxNewTokens: 12, doSample: true, temperature: 0.7, topP: 0.9, seed: 5, stopStrings: ['\n'] },
          responseFormat: { type: 'json_object' },
        }),
      );
      assert.equal(result.text, 'Hello!');
      assert.equal(result.finishReason, 'eos');
      assert.deepEqual(result.usage, { promptTokens: 30, completionTokens: 3, totalTokens: 33 });
      assert.equal(s.requests.length, 3, 'two retries, then the answer');
      const { body, headers } = s.requests[2];
      assert.equal(headers.authorization, 'Bearer sk-secret');
      assert.deepEqual(
        { ...body, messages: undefined },
        {
          model: 'm',
          stream: true,
          stream_options: { include_usage: true },
          max_tokens: 12,
          temperature: 0.7,
          top_p: 0.9,
          seed: 5,
          stop: ['\n'],
          response_format: { type: 'json_object' },
          messages: undefined,
        },
      );
      assert.deepEqual(body.messages[0], { role: 'system', content: 'Be brief.' });
      assert.equal(body.messages[1].role, 'user');
      assert.equal(body.messages[1].content[0].image_url.url, `data:image/jpeg;base64,${jpeg.toString('base64')}`, 'a small upright JPEG goes byte for byte');
      assert.deepEqual(body.messages[1].content[1], { type: 'text', text: 'What is it?' });
    } finally {
      await s.close();
    }
  });

  it('re-encodes other images as a JPEG within the longest side', async () => {
    const s = await scripted(
      (_n, res) =>
        void res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ choices: [{ message: { content: 'ok' }, finish_reason: 'stop' }] })),
    );
    try {
      const png = await sharp({ create: { width: 2000, height: 1000, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 1 } } })
        .png()
        .toBuffer();
      const result = await remote(s.url, { imageMaxSide: 500 }).generate(request({ image: png }));
      assert.equal(result.text, 'ok', 'a server that answers JSON instead of a stream is read too');
      const url: string = s.requests[0].body.messages[0].content[0].image_url.url;
      const meta = await sharp(Buffer.from(url.split(',')[1], 'base64')).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', 500, 250]);
    } finally {
      await s.close();
    }
  });

  it("puts the server's own error message in the error and does not retry a 400", async () => {
    const s = await scripted(
      (_n, res) =>
        void res
          .writeHead(400, { 'content-type': 'application/json' })
          .end('{"error":{"message":"image exceeds the context of this model","type":"invalid_request_error"}}'),
    );
    try {
      await assert.rejects(remote(s.url).generate(request()), (err: RemoteEngineError) => {
        assert.equal(err.status, 400);
        assert.match(err.message, /answered 400: image exceeds the context of this model/);
        return true;
      });
      assert.equal(s.requests.length, 1);
    } finally {
      await s.close();
    }
  });

  it('retries a connection that breaks before the first token, never one that breaks after it', async () => {
    const s = await scripted(async (n, res) => {
      streamHead(res);
      if (n === 0) return void res.socket!.destroy();
      res.write(chunk('partial'));
      await sleep(20);
      res.socket!.destroy();
    });
    try {
      const seen: string[] = [];
      await assert.rejects(
        remote(s.url).generate(request({ onEvent: (e) => e.type === 'text' && seen.push(e.delta) })),
        /connection broke mid-answer after 1 pieces of text/,
      );
      assert.equal(s.requests.length, 2, 'one retry (before the first token), none after');
      assert.deepEqual(seen, ['partial']);
    } finally {
      await s.close();
    }
  });

  it('gives up on a server that sends no first token in time (comment pings do not count)', async () => {
    const s = await scripted(async (_n, res) => {
      streamHead(res);
      const ping = setInterval(() => res.write(': ping\n\n'), 50);
      res.on('close', () => clearInterval(ping));
    });
    try {
      const started = Date.now();
      await assert.rejects(remote(s.url, { retries: 0, timeouts: { firstTokenMs: 300 } }).generate(request()), /no first token within 0.3 s/);
      assert.ok(Date.now() - started < 5000);
      await sleep(50);
      assert.equal(s.closedEarly, 1, 'the request was aborted, not left open');
    } finally {
      await s.close();
    }
  });

  it('cancels: aborting the signal rejects with its reason and closes the request', async () => {
    const s = await scripted(async (_n, res) => {
      streamHead(res);
      res.write(chunk('a'));
    });
    try {
      const abort = new AbortController();
      const pending = remote(s.url).generate(request({ signal: abort.signal, onEvent: (e) => e.type === 'text' && abort.abort(new Error('redeployed')) }));
      await assert.rejects(pending, /redeployed/);
      await sleep(50);
      assert.equal(s.closedEarly, 1);
    } finally {
      await s.close();
    }
  });

  it('time limit: sends max_time, and stops reading a server that ignores it (after a grace time): the text so far, finish reason time', async () => {
    const s = await scripted(async (_n, res) => {
      streamHead(res);
      res.write(chunk('Hel'));
      await sleep(20);
      res.write(chunk('lo'));
    });
    try {
      const started = Date.now();
      const result = await remote(s.url).generate(request({ options: { maxTime: 0.3 } }));
      assert.deepEqual([result.text, result.finishReason], ['Hello', 'time']);
      assert.equal(s.requests[0].body.max_time, 0.3);
      const took = Date.now() - started;
      assert.ok(took >= 290 + TIME_LIMIT_GRACE_MS && took < 5000 + TIME_LIMIT_GRACE_MS, `${took} ms`);
      await sleep(50);
      assert.equal(s.closedEarly, 1, 'the request was closed at the limit');
    } finally {
      await s.close();
    }
  });

  it('time limit through `llava serve`: the server stops at max_time and says finish_reason time', async () => {
    const dir = tinyModel({ layout: 'split', decoder: 'portable' }).dir;
    const server = new OpenAiServer({ engine: new LocalEngine(await LlavaModel.load(dir, { providers: 'cpu' })), modelName: 'tiny' });
    const { port } = await server.listen();
    try {
      const ask = async (extra: object) => {
        const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            model: 'tiny',
            max_tokens: 30,
            temperature: 0,
            messages: [
              {
                role: 'user',
                content: [
                  { type: 'image_url', image_url: { url: `data:image/jpeg;base64,${jpeg.toString('base64')}` } },
                  { type: 'text', text: 'What is it?' },
                ],
              },
            ],
            ...extra,
          }),
        });
        return { status: res.status, body: (await res.json()) as any };
      };
      const cut = await ask({ max_time: 0.000001 });
      const whole = await ask({});
      assert.equal(cut.status, 200);
      assert.equal(cut.body.choices[0].finish_reason, 'time');
      assert.equal(cut.body.usage.completion_tokens, 1);
      assert.ok(cut.body.choices[0].message.content.length > 0 && whole.body.choices[0].message.content.startsWith(cut.body.choices[0].message.content));
      assert.notEqual(whole.body.choices[0].finish_reason, 'time');
      const bad = await ask({ max_time: -1 });
      assert.equal(bad.status, 400);
      assert.match(bad.body.error.message, /max_time must be a number of seconds > 0/);
      // The remote engine reads the server's "time" as the time limit.
      const remoteCut = await remote(`http://127.0.0.1:${port}`, { model: 'tiny' }).generate(
        request({ options: { maxNewTokens: 30, doSample: false, maxTime: 0.000001 } }),
      );
      assert.equal(remoteCut.finishReason, 'time');
      assert.equal(remoteCut.usage?.completionTokens, 1);
    } finally {
      await server.close();
    }
  });

  it('keeps at most `concurrency` requests in flight', async () => {
    const s = await scripted(async (_n, res) => {
      await sleep(80);
      streamHead(res);
      res.end(chunk('x', 'stop') + 'data: [DONE]\n\n');
    });
    try {
      const engine = remote(s.url, { concurrency: 2 });
      const results = await Promise.all(Array.from({ length: 5 }, () => engine.generate(request())));
      assert.deepEqual(
        results.map((r) => r.text),
        ['x', 'x', 'x', 'x', 'x'],
      );
      assert.equal(s.maxActive, 2);
    } finally {
      await s.close();
    }
  });

  it('checks reachability: ready, a model the server does not list, nobody listening', async () => {
    const s = await scripted(() => undefined, ['m', 'other']);
    try {
      assert.deepEqual(await remote(s.url).check(), { state: 'ready', detail: `${new URL(s.url).host} m` });
      const missing = await remote(s.url, { model: 'llava-13b' }).check();
      assert.equal(missing.state, 'error');
      assert.match((missing as { error: string }).error, /"llava-13b" is not served.*it serves m, other/);
    } finally {
      await s.close();
    }
    const down = await remote(`http://127.0.0.1:${await freePort()}`).check();
    assert.equal(down.state, 'unreachable');
    assert.match((down as { error: string }).error, /ECONNREFUSED/);
  });

  it('sends a JSON answer format as response_format with the normalised schema', () => {
    const schema = { type: 'object', properties: { person: { type: 'boolean' } }, required: ['person'] };
    const body = openAiSampling({ format: { type: 'json_schema', schema } });
    assert.equal((body.response_format as any).type, 'json_schema');
    assert.deepEqual((body.response_format as any).json_schema.schema.required, ['person']);
    assert.deepEqual(openAiSampling({ format: { type: 'json' } }).response_format, { type: 'json_object' });
  });

  it('refuses options the OpenAI API cannot carry, and URLs with credentials', async () => {
    await assert.rejects(remote('http://127.0.0.1:9').generate(request({ options: { numBeams: 3 } })), /beam search/);
    await assert.rejects(remote('http://127.0.0.1:9').generate(request({ options: { topK: 5 } })), /topK is not part of the OpenAI/);
    assert.throws(() => remote('http://user:pw@127.0.0.1:9'), /API key in its own setting/);
  });
});

describe('OpenAiServer bounds', function () {
  this.timeout(60_000);
  after(() => getRuntime().dispose());

  it('answers 503 on /health and requests while the model loads, 429 when its queue is full, and serves after', async () => {
    const dir = tinyModel({ layout: 'split', decoder: 'portable' }).dir;
    let loaded!: (e: Engine) => void;
    let gate!: () => void;
    const opened = new Promise<void>((r) => (gate = r));
    const server = new OpenAiServer({ engine: new Promise<Engine>((r) => (loaded = r)), modelName: 'tiny', parallel: 1, maxQueue: 1 });
    const { port } = await server.listen();
    const url = `http://127.0.0.1:${port}`;
    const jpeg = fs.readFileSync(await sharpFile());
    const body = JSON.stringify({
      model: 'tiny',
      max_tokens: 3,
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/jpeg;base64,${jpeg.toString('base64')}` } }] }],
    });
    const post = () => fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    try {
      assert.equal((await fetch(`${url}/health`)).status, 503);
      const early = await post();
      assert.equal(early.status, 503);
      assert.equal(((await early.json()) as { error: { code: string } }).error.code, 'model_loading');
      const local = new LocalEngine(await LlavaModel.load(dir, { providers: 'cpu' }));
      // The first generation waits at a gate so that the queue fills deterministically.
      loaded({
        ...local,
        kind: 'local',
        label: local.label,
        check: () => local.check(),
        close: () => local.close(),
        generate: async (r) => (await opened, local.generate(r)),
      });
      await sleep(10);
      assert.equal((await fetch(`${url}/health`)).status, 200);
      const running = post();
      await sleep(100);
      const waiting = post();
      await sleep(100);
      const rejected = await post();
      assert.equal(rejected.status, 429);
      assert.equal(rejected.headers.get('retry-after'), '1');
      assert.equal(((await rejected.json()) as { error: { code: string } }).error.code, 'queue_full');
      gate();
      const answers = [await running, await waiting];
      assert.deepEqual(
        answers.map((a) => a.status),
        [200, 200],
        await answers[0].text(),
      );
      assert.equal((await post()).status, 200);
    } finally {
      await server.close();
    }
  });
});

async function sharpFile(): Promise<string> {
  const file = `${require('os').tmpdir()}/llava-bounds-${process.pid}.jpg`;
  await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 1, g: 2, b: 3 } } })
    .jpeg()
    .toFile(file);
  return file;
}
