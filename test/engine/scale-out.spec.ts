// More cameras than one machine: three real Node-RED processes run the mqtt-shared-cameras example against one
// real Mosquitto. Every frame is captioned, dropped or failed exactly once across the instances (no duplicates,
// nothing lost), and when one instance dies the others receive the rest.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import mqtt = require('mqtt');
import sharp from 'sharp';
import { Broker, startBroker } from '../support/broker';
import { repoRoot, RunningNodeRed, startNodeRed } from '../support/node-red';
import { requireSystemPackages } from '../support/system-packages';
import { tinyModel } from '../support/tiny-model';

const CAMERAS = 6;

function sharedFlow(broker: Broker, modelDir: string): any[] {
  const flow: any[] = JSON.parse(fs.readFileSync(path.join(repoRoot, 'examples', 'mqtt-shared-cameras.json'), 'utf8'));
  const z = flow.find((n) => n.z)!.z;
  for (const n of flow) {
    if (n.type === 'mqtt-broker') n.port = String(broker.port);
    if (n.type === 'llava-model') Object.assign(n, { modelDir, provider: 'cpu', threads: 1 });
    // Few tokens: the test is about where frames go, not about captions.
    if (n.type === 'llava-generate') n.maxNewTokens = '2';
  }
  return [{ id: z, type: 'tab', label: 'shared cameras' }, ...flow];
}

interface Outcome {
  kind: 'caption' | 'dropped' | 'error';
  instance: string;
  camera: string;
}

describe('scale-out: three Node-RED instances share camera frames ($share over MQTT v5)', function () {
  this.timeout(300_000);
  let broker: Broker;
  let client: mqtt.MqttClient;
  const instances: RunningNodeRed[] = [];
  /** frame id → every outcome reported for it (more than one would be a duplicate). */
  const outcomes = new Map<string, Outcome[]>();
  let frames: Buffer[];

  before(async function () {
    requireSystemPackages(this, 'mosquitto');
    const model = tinyModel({ layout: 'split', decoder: 'portable' });
    broker = await startBroker();
    for (const name of ['a', 'b', 'c']) {
      // Each instance says who it is in its results ($env("LLAVA_INSTANCE") in the example's change nodes).
      const saved = process.env.LLAVA_INSTANCE;
      process.env.LLAVA_INSTANCE = name;
      try {
        instances.push(await startNodeRed({ flows: sharedFlow(broker, model.dir) }));
      } finally {
        if (saved === undefined) delete process.env.LLAVA_INSTANCE;
        else process.env.LLAVA_INSTANCE = saved;
      }
    }
    for (const nr of instances) {
      const deadline = Date.now() + 60_000;
      while (!/Connected to broker/.test(nr.log())) {
        if (Date.now() > deadline) throw new Error(`an instance did not connect to the broker:\n${nr.log()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    client = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    await client.subscribeAsync(['camera/+/caption', 'camera/+/dropped', 'camera/+/error'], { qos: 1 });
    client.on('message', (topic, payload) => {
      const [, camera, kind] = topic.split('/');
      const body = JSON.parse(payload.toString());
      const list = outcomes.get(body.frame) ?? [];
      list.push({ kind: kind as Outcome['kind'], instance: body.instance, camera });
      outcomes.set(body.frame, list);
    });
    frames = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        sharp({ create: { width: 48, height: 36, channels: 3, background: { r: 30 * i, g: 100, b: 255 - 30 * i } } })
          .jpeg()
          .toBuffer(),
      ),
    );
    // A moment for the shared subscriptions to be in place at the broker.
    await new Promise((r) => setTimeout(r, 500));
  });
  after(async () => {
    await client?.endAsync();
    await Promise.all(instances.map((nr) => nr.stop()));
    await broker?.stop();
  });

  async function publish(from: number, count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = from; i < from + count; i++) {
      const id = `f${i}`;
      ids.push(id);
      await client.publishAsync(`camera/cam${i % CAMERAS}/snapshot`, frames[i % frames.length], { qos: 1, properties: { userProperties: { frame: id } } });
    }
    return ids;
  }

  async function accounted(ids: string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (ids.some((id) => !outcomes.has(id))) {
      if (Date.now() > deadline) {
        const missing = ids.filter((id) => !outcomes.has(id));
        throw new Error(
          `${missing.length} frames never came back (${missing.slice(0, 10).join(', ')}…); logs:\n${instances.map((nr) => nr.log().slice(-1500)).join('\n---\n')}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('300 frames from 6 cameras: each captioned, dropped or failed exactly once, spread over all three instances', async () => {
    const ids = await publish(0, 300);
    await accounted(ids, 180_000);
    await new Promise((r) => setTimeout(r, 500)); // a duplicate would arrive by now
    const perInstance: Record<string, number> = {};
    const kinds: Record<string, number> = {};
    for (const id of ids) {
      const list = outcomes.get(id)!;
      assert.equal(list.length, 1, `frame ${id} reported ${list.length} times: ${JSON.stringify(list)}`);
      perInstance[list[0].instance] = (perInstance[list[0].instance] ?? 0) + 1;
      kinds[list[0].kind] = (kinds[list[0].kind] ?? 0) + 1;
      assert.equal(list[0].camera, `cam${Number(id.slice(1)) % CAMERAS}`, "the outcome is published under the frame's camera");
    }
    assert.deepEqual(Object.keys(perInstance).sort(), ['a', 'b', 'c'], `frames per instance: ${JSON.stringify(perInstance)}`);
    // Mosquitto deals shared-subscription messages out round-robin.
    for (const n of Object.values(perInstance)) assert.ok(n >= 60, `frames per instance: ${JSON.stringify(perInstance)}`);
    assert.ok((kinds.caption ?? 0) > 0, `outcomes: ${JSON.stringify(kinds)}`);
    assert.equal(kinds.error ?? 0, 0, `outcomes: ${JSON.stringify(kinds)}`);
  });

  it('one instance killed mid-run: the others receive every later frame, still exactly once', async () => {
    const before = await publish(300, 60);
    await new Promise((r) => setTimeout(r, 200));
    const killed = instances[2];
    killed.process.kill('SIGKILL');
    await new Promise((r) => killed.process.once('exit', r));
    await new Promise((r) => setTimeout(r, 300));
    const after = await publish(360, 120);
    await accounted(after, 180_000);
    await new Promise((r) => setTimeout(r, 500));
    for (const id of after) {
      const list = outcomes.get(id)!;
      assert.equal(list.length, 1, `frame ${id} reported ${list.length} times`);
      assert.ok(['a', 'b'].includes(list[0].instance), `frame ${id} went to ${list[0].instance} after it died`);
    }
    assert.deepEqual(new Set(after.map((id) => outcomes.get(id)![0].instance)), new Set(['a', 'b']));
    // Frames the dead instance held are lost (Node-RED acknowledges on receipt), never duplicated.
    for (const id of before) assert.ok((outcomes.get(id)?.length ?? 0) <= 1, `frame ${id} duplicated`);
  });
});
