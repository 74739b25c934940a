// llm generate's output formats in a real Node-RED runtime (node-red-node-test-helper) on a tiny random-weight
// model: msg.payload is the parsed answer, msg.llava.schema per message, cut-off and schema errors at Catch.
import { strict as assert } from 'assert';
import * as path from 'path';
import { helper, repoRoot, useNodeRedHelper, coreNode } from '../support/node-red';
import { tinyModel } from '../support/tiny-model';
import { validator } from '../pipeline/generation/json-support';

const llavaNodes = ['llava-model', 'llava-generate'].map((t) => require(path.join(repoRoot, 'dist', 'nodes', `${t}.js`)));
const catchNode = coreNode('common/25-catch.js');

type Msg = Record<string, any>;

const DOORBELL = {
  type: 'object',
  properties: { person: { type: 'boolean' }, count: { type: 'integer', minimum: 0, maximum: 9 }, description: { type: 'string', maxLength: 20 } },
  required: ['person', 'count', 'description'],
  additionalProperties: false,
};

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

function flow(generate: Msg): any[] {
  const onTab = (n: Msg): Msg => ({ z: 'tab', x: 100, y: 100, ...n });
  return [
    { id: 'tab', type: 'tab' },
    {
      id: 'model',
      type: 'llava-model',
      modelDir: tinyModel({ layout: 'split', decoder: 'optimized' }).dir,
      provider: 'cpu',
      threads: 1,
      variant: 'fp32',
      preset: 'auto',
      imageRoots: '',
    },
    onTab({ id: 'catch', type: 'catch', scope: null, uncaught: false, wires: [['caught']] }),
    onTab({ id: 'caught', type: 'helper' }),
    onTab({
      id: 'generate',
      type: 'llava-generate',
      model: 'model',
      stream: false,
      queuePolicy: 'fifo',
      queueLength: 5,
      dropped: 'status',
      maxNewTokens: '120',
      wires: [['out'], []],
      ...generate,
    }),
    onTab({ id: 'out', type: 'helper' }),
  ];
}

const PROMPT = 'USER: Is anyone at the door? ASSISTANT:';

describe('llm generate: JSON output formats in Node-RED', function () {
  this.timeout(120_000);
  useNodeRedHelper();

  it('Output "JSON matching a schema": msg.payload is the parsed object; msg.llava.schema overrides per message', async () => {
    await helper.load([...llavaNodes, catchNode], flow({ outputFormat: 'schema', schema: JSON.stringify(DOORBELL) }));
    const check = validator(DOORBELL);
    for (const seed of [1, 2, 3]) {
      const out = next('out');
      helper.getNode('generate').receive({ llava: { prompt: PROMPT, options: { doSample: true, seed } } });
      const msg = await out;
      check(msg.payload);
      assert.deepEqual(msg.payload, JSON.parse(msg.llava.generation.text));
      assert.equal(msg.llava.generation.finishReason, 'eos');
    }
    const other = { type: 'array', items: { enum: ['car', 'bike'] }, minItems: 1, maxItems: 2 };
    const out = next('out');
    helper.getNode('generate').receive({ llava: { prompt: PROMPT, schema: JSON.stringify(other) } });
    validator(other)((await out).payload);
  });

  it('Output "JSON": any object (or a cut-off error), with beam search', async () => {
    await helper.load([...llavaNodes, catchNode], flow({ outputFormat: 'json', maxNewTokens: '200' }));
    const out = next('out');
    const caught = next('caught');
    helper.getNode('generate').receive({ llava: { prompt: PROMPT, options: { numBeams: 2 } } });
    // A random model may fill one string value until the limit: then the answer is cut off (an error), never invalid.
    const first = await Promise.race([out.then((m) => ({ m })), caught.then((c) => ({ c }))]);
    if ('m' in first) assert.ok(first.m.payload !== null && typeof first.m.payload === 'object' && !Array.isArray(first.m.payload));
    else assert.match(first.c.error.message, /cut off/);
  });

  it('a cut-off answer goes to Catch with the partial text; no message leaves the node', async () => {
    await helper.load([...llavaNodes, catchNode], flow({ outputFormat: 'schema', schema: JSON.stringify(DOORBELL), maxNewTokens: '4' }));
    let sent = 0;
    helper.getNode('out').on('input', () => sent++);
    const caught = next('caught');
    helper.getNode('generate').receive({ llava: { prompt: PROMPT } });
    const c = await caught;
    assert.match(c.error.message, /the answer was cut off by the token limit \(4 tokens\) before its JSON was complete; partial text: \{/);
    assert.equal(sent, 0);
  });

  it('an unsupported keyword in the editor fails every message, naming it', async () => {
    await helper.load([...llavaNodes, catchNode], flow({ outputFormat: 'schema', schema: '{"type":"object","patternProperties":{}}' }));
    for (let i = 0; i < 2; i++) {
      const caught = next('caught');
      helper.getNode('generate').receive({ llava: { prompt: PROMPT } });
      assert.match((await caught).error.message, /unsupported keyword "patternProperties"/);
    }
  });

  it('an unsupported keyword or invalid JSON in msg.llava.schema fails that message, naming it', async () => {
    await helper.load([...llavaNodes, catchNode], flow({ outputFormat: 'text' }));
    let caught = next('caught');
    helper.getNode('generate').receive({ llava: { prompt: PROMPT, schema: { type: 'integer', multipleOf: 3 } } });
    assert.match((await caught).error.message, /msg\.llava\.schema: #: unsupported keyword "multipleOf"/);
    caught = next('caught');
    helper.getNode('generate').receive({ llava: { prompt: PROMPT, schema: '{not json' } });
    assert.match((await caught).error.message, /msg\.llava\.schema: the JSON schema is not valid JSON/);
  });
});
