// Typed properties inside the real Node-RED runtime: msg paths (created on write), flow/global context, JSONata,
// and clear errors naming the property.
import * as assert from 'assert';
import type { Node, NodeAPI, NodeMessage } from 'node-red';
import { handleInput } from '../../../nodes/shared/input';
import { readRequiredProperty, typedProperty, writeProperty } from '../../../nodes/shared/properties';
import { coreNode, helper } from '../../support/node-red';

/** Copies its input property to its output property, both configured as TypedInputs. */
function copyNode(RED: NodeAPI) {
  RED.nodes.registerType('property-copy', function (this: Node, config: any) {
    RED.nodes.createNode(this, config);
    const input = typedProperty(config.input, config.inputType, 'msg.payload');
    const output = typedProperty(config.output, config.outputType, 'msg.llava.pixels');
    handleInput(this, {
      process: async (msg, send) => {
        const value = await readRequiredProperty(RED, this, input, msg, 'an image');
        writeProperty(RED, this, output, msg, value);
        send(msg);
      },
    });
  });
}

const catchNode = coreNode('common/25-catch.js');

async function run(config: object, msg: object) {
  const flow: any[] = [
    { id: 'f1', type: 'tab' },
    { id: 'p', z: 'f1', type: 'property-copy', ...config, wires: [['out']] },
    { id: 'c', z: 'f1', type: 'catch', scope: ['p'], wires: [['caught']] },
    { id: 'out', z: 'f1', type: 'helper' },
    { id: 'caught', z: 'f1', type: 'helper' },
  ];
  await helper.load([copyNode, catchNode], flow);
  const result = new Promise<{ out?: any; caught?: any }>((resolve) => {
    helper.getNode('out').on('input', (m: NodeMessage) => resolve({ out: m }));
    helper.getNode('caught').on('input', (m: NodeMessage) => resolve({ caught: m }));
  });
  helper.getNode('p').receive(msg as NodeMessage);
  return result;
}

describe('nodes/shared typed properties in Node-RED', () => {
  afterEach(async () => {
    await helper.unload();
  });

  it('defaults: reads msg.payload and writes msg.llava.pixels, creating msg.llava and keeping what is there', async () => {
    const { out } = await run({}, { payload: Buffer.from('jpeg'), llava: { keep: true } });
    assert.deepStrictEqual(out.llava.pixels, Buffer.from('jpeg'));
    assert.strictEqual(out.llava.keep, true);
  });

  it('reads a nested msg path and writes to flow context', async () => {
    const { out } = await run({ input: 'camera.frame', inputType: 'msg', output: 'lastFrame', outputType: 'flow' }, { camera: { frame: 'abc' } });
    assert.ok(out);
    assert.strictEqual(helper.getNode('p').context().flow.get('lastFrame'), 'abc');
  });

  it('evaluates JSONata asynchronously (Node-RED 4+ throws on synchronous JSONata)', async () => {
    const { out } = await run({ input: '$uppercase(payload)', inputType: 'jsonata', output: 'result', outputType: 'msg' }, { payload: 'cat' });
    assert.strictEqual(out.result, 'CAT');
  });

  it('a missing input is an error naming the property and what was expected', async () => {
    const { caught } = await run({ input: 'image', inputType: 'msg' }, { payload: 'x' });
    assert.match(caught.error.message, /msg\.image is empty: expected an image/);
  });

  it('refuses to write to a non-writable type', async () => {
    const { caught } = await run({ output: 'x', outputType: 'str' }, { payload: 1 });
    assert.match(caught.error.message, /output property must be msg, flow or global, got str "x"/);
  });
});
