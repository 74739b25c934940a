// The LLaVA nodes with their llava-model pointed at `llava serve` (a real server in a child process): the caption
// example and the short flow (image load → prompt template → llm generate) give the local engine's text; the
// server killed mid-answer is a clear error at Catch, and the next message works once it is back.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { coreNode, helper, repoRoot, useNodeRedHelper } from '../support/node-red';
import { tinyModel } from '../support/tiny-model';
import { Served, startServe } from './support';

const llavaNodes = ['llava-model', 'llava-image-load', 'llava-clip-encode', 'llava-project', 'llava-prompt-template', 'llava-generate'].map((t) =>
  require(path.join(repoRoot, 'dist', 'nodes', `${t}.js`)),
);
const coreNodes = ['common/20-inject.js', 'common/21-debug.js', 'common/25-catch.js', 'common/90-comment.js', 'storage/10-file.js'].map(coreNode);

type Msg = Record<string, any>;
const onTab = (n: Msg): Msg => ({ z: 'tab', x: 100, y: 100, ...n });

function next(nodeId: string, timeoutMs = 60_000): Promise<Msg> {
  return new Promise((resolve, reject) => {
    const node = helper.getNode(nodeId);
    const timer = setTimeout(() => reject(new Error(`no message at ${nodeId} within ${timeoutMs} ms`)), timeoutMs);
    node.once('input', (m: Msg) => {
      clearTimeout(timer);
      resolve(m);
    });
  });
}

/** The first of: a message at `out`, or one at the Catch helper (as an error). */
function result(out = 'out'): Promise<Msg> {
  return Promise.race([next(out), next('caught').then((m) => Promise.reject(new Error(`caught: ${m.error?.message}`)))]);
}

const API_KEY = 'sk-node-red-test';

/** The llava-model either way: this process with the same preset as the server, or the server. */
function modelNode(engine: 'local' | 'remote', server: Served | null, dir: string, preset: string): Msg {
  return engine === 'local'
    ? { id: 'model', type: 'llava-model', engine: 'local', modelDir: dir, provider: 'cpu', threads: 1, variant: 'auto', preset, imageRoots: '' }
    : {
        id: 'model',
        type: 'llava-model',
        engine: 'openai',
        engineUrl: server!.url,
        engineModel: path.basename(dir),
        imageMaxSide: 672,
        concurrency: 2,
        firstTokenTimeout: 60,
      };
}

describe('LLaVA nodes with a remote engine (llava serve)', function () {
  this.timeout(240_000);
  useNodeRedHelper();
  let dir: string;
  let tmp: string;
  let imageFile: string;
  const servers: Served[] = [];
  const serve = async (args: string[] = []) => {
    const s = await startServe(dir, args, { ...process.env, LLAVA_API_KEY: API_KEY });
    servers.push(s);
    return s;
  };

  before(async () => {
    dir = tinyModel({ layout: 'split', decoder: 'portable' }).dir;
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-nr-remote-'));
    imageFile = path.join(tmp, 'frame.jpg');
    await sharp({ create: { width: 96, height: 72, channels: 3, background: { r: 200, g: 120, b: 40 } } })
      .jpeg()
      .toFile(imageFile);
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function load(nodes: Msg[], model: Msg): Promise<void> {
    await helper.load(
      [...llavaNodes, ...coreNodes],
      [
        { id: 'tab', type: 'tab' },
        model,
        onTab({ id: 'catch', type: 'catch', scope: null, uncaught: false, wires: [['caught']] }),
        onTab({ id: 'caught', type: 'helper' }),
        ...nodes.map(onTab),
      ] as any,
      { model: { apiKey: API_KEY } },
    );
  }

  it("the caption example gives the local engine's text", async () => {
    // The example's template is mmpretrain v1.5 caption: the server renders the same prompt with that preset.
    const preset = 'llava-7b-v1.5_caption';
    const server = await serve(['--preset', preset]);
    const captions: Record<string, Msg> = {};
    for (const engine of ['local', 'remote'] as const) {
      const example: Msg[] = JSON.parse(fs.readFileSync(path.join(repoRoot, 'examples', 'caption.json'), 'utf8'));
      example.find((n) => n.type === 'file in')!.filename = imageFile;
      const gen = example.find((n) => n.type === 'llava-generate')!;
      gen.maxNewTokens = '8';
      gen.wires = [['out'], ['partial']];
      const nodes = example.filter((n) => n.type !== 'llava-model').map((n) => ({ ...n, model: n.model ? 'model' : n.model }));
      await load([...nodes, { id: 'out', type: 'helper' }, { id: 'partial', type: 'helper' }], modelNode(engine, server, dir, preset));
      const partials: string[] = [];
      helper.getNode('partial').on('input', (m: Msg) => partials.push(m.payload));
      const done = result();
      helper.getNode(example.find((n) => n.type === 'inject')!.id).receive({ payload: Date.now() });
      captions[engine] = await done;
      captions[engine].partials = partials.join('');
      await helper.unload();
    }
    assert.ok(captions.local.payload.length > 0);
    assert.equal(captions.remote.payload, captions.local.payload);
    assert.equal(captions.remote.partials, captions.remote.payload, 'the streamed partials join to the caption');
    assert.equal(captions.remote.llava.generation.provider, `${new URL(server.url).host} ${path.basename(dir)}`);
    assert.equal(captions.remote.llava.generation.newTokens, captions.local.llava.generation.newTokens);
  });

  it('the short flow (image load → prompt template → llm generate) gives the same text with both engines, streamed to output 2', async () => {
    const server = await serve();
    const texts: Record<string, { payload: string; partials: string }> = {};
    for (const engine of ['local', 'remote'] as const) {
      await load(
        [
          { id: 'load', type: 'llava-image-load', model: 'model', wires: [['prompt']] },
          { id: 'prompt', type: 'llava-prompt-template', model: 'model', preset: 'model', question: 'question', questionType: 'msg', wires: [['generate']] },
          { id: 'generate', type: 'llava-generate', model: 'model', stream: true, maxNewTokens: '8', doSample: false, wires: [['out'], ['partial']] },
          { id: 'out', type: 'helper' },
          { id: 'partial', type: 'helper' },
        ],
        modelNode(engine, server, dir, 'auto'),
      );
      const partials: string[] = [];
      helper.getNode('partial').on('input', (m: Msg) => partials.push(m.payload));
      const done = result();
      helper.getNode('load').receive({ payload: fs.readFileSync(imageFile), question: 'What colour is it?' });
      const msg = await done;
      texts[engine] = { payload: msg.payload, partials: partials.join('') };
      if (engine === 'remote') {
        assert.equal(msg.llava.pixels, undefined, 'the image went with the request and is not carried on');
        assert.equal(msg.llava.chat.question, 'What colour is it?');
      }
      await helper.unload();
    }
    assert.ok(texts.local.payload.length > 0);
    assert.deepEqual(texts.remote, texts.local);
    assert.equal(texts.local.partials, texts.local.payload);
  });

  it('reports the server killed mid-answer at Catch, and the next message works once it is back', async () => {
    let server = await serve();
    const port = new URL(server.url).port;
    await load(
      [
        { id: 'load', type: 'llava-image-load', model: 'model', wires: [['encode']] },
        { id: 'encode', type: 'llava-clip-encode', model: 'model', wires: [['project']] },
        { id: 'project', type: 'llava-project', model: 'model', wires: [['generate']] },
        { id: 'generate', type: 'llava-generate', model: 'model', stream: true, queuePolicy: 'fifo', queueLength: 5, wires: [['out'], ['partial']] },
        { id: 'out', type: 'helper' },
        { id: 'partial', type: 'helper' },
      ],
      modelNode('remote', server, dir, 'auto'),
    );
    const statuses: string[] = [];
    const encode = helper.getNode('encode');
    const originalStatus = encode.status.bind(encode);
    encode.status = (s: { text?: string }) => {
      statuses.push(s.text ?? '');
      return originalStatus(s);
    };
    helper.getNode('partial').once('input', () => {
      void server.stop('SIGKILL');
    });
    const failed = next('caught');
    helper.getNode('load').receive({ payload: fs.readFileSync(imageFile), llava: { options: { maxNewTokens: 200 } } });
    const caught = await failed;
    assert.match(caught.error.message, /connection broke mid-answer|other side closed|ECONNRESET/);
    assert.ok(
      statuses.some((s) => /passed on \(remote engine\)/.test(s)),
      `clip encode's status said it passed the image on: ${statuses.join(' | ')}`,
    );

    server = await serve(['--port', port]);
    const done = result();
    helper.getNode('load').receive({ payload: fs.readFileSync(imageFile), llava: { options: { maxNewTokens: 4 } } });
    const msg = await done;
    assert.equal(typeof msg.payload, 'string');
    assert.ok(msg.llava.generation.newTokens > 0 && msg.llava.generation.newTokens <= 4);
  });
});
