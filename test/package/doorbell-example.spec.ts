// The doorbell example as shipped, in a real Node-RED with a real Mosquitto and a tiny model (random
// weights): every answer is an object matching the example's schema, and exactly the answers with person: true
// become a notification on doorbell/notify.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import mqtt = require('mqtt');
import sharp from 'sharp';
import { Broker, startBroker } from '../support/broker';
import { RunningNodeRed, repoRoot, startNodeRed } from '../support/node-red';
import { architecture } from '../../lib/onnx/architectures';
import { randomWeights } from '../../lib/onnx/random-weights';
import { writeModelFolder } from '../../lib/onnx/write-model';
import { validator } from '../pipeline/generation/json-support';

/**
 * A tiny model with random weights: it knows no JSON at all, so every valid answer is the constraint's work (the
 * shape-trained demo model would rather write captions, and runs into the token limit inside the description).
 */
function writeRandomModel(dir: string): void {
  const arch = architecture('tiny');
  writeModelFolder({ outDir: dir, config: arch.config, weights: randomWeights(arch.config, 1), tokenizer: { kind: 'tiny-llama' } });
}
const ANSWERS = 'test/doorbell/answer';

function doorbellFlow(broker: Broker, modelDir: string): { flow: any[]; schema: unknown } {
  const flow: any[] = JSON.parse(fs.readFileSync(path.join(repoRoot, 'examples', 'doorbell.json'), 'utf8'));
  const z = flow.find((n) => n.z)!.z;
  const generate = flow.find((n) => n.type === 'llava-generate')!;
  const broker0 = flow.find((n) => n.type === 'mqtt-broker')!;
  for (const n of flow) {
    if (n.type === 'mqtt-broker') n.port = String(broker.port);
    if (n.type === 'llava-model') n.modelDir = modelDir;
  }
  // The test also watches every answer: one more wire from llm generate to an mqtt out.
  flow.push({ id: 'testanswers', type: 'mqtt out', z, topic: ANSWERS, qos: '1', retain: 'false', broker: broker0.id, x: 900, y: 400, wires: [] });
  generate.wires[0].push('testanswers');
  return { flow: [{ id: z, type: 'tab', label: 'doorbell' }, ...flow], schema: JSON.parse(generate.schema) };
}

describe('package: the doorbell example end to end (Mosquitto + tiny random model)', function () {
  let dir: string;
  let broker: Broker;
  let nr: RunningNodeRed;
  let client: mqtt.MqttClient;
  let schema: unknown;

  before(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-doorbell-example-'));
    writeRandomModel(path.join(dir, 'model'));
    broker = await startBroker();
    const built = doorbellFlow(broker, path.join(dir, 'model'));
    schema = built.schema;
    nr = await startNodeRed({ flows: built.flow });
    client = await mqtt.connectAsync(broker.url);
  });
  after(async function () {
    await client?.endAsync();
    await nr?.stop();
    await broker?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers every snapshot with {person, count, description}; person: true notifies on doorbell/notify', async () => {
    const answers: any[] = [];
    const notifications: string[] = [];
    await client.subscribeAsync([ANSWERS, 'doorbell/notify']);
    client.on('message', (topic, payload) => {
      if (topic === ANSWERS) answers.push(JSON.parse(payload.toString('utf8')));
      else notifications.push(payload.toString('utf8'));
    });
    const frame = (i: number) =>
      sharp({ create: { width: 64, height: 48, channels: 3, background: { r: (i * 67) % 256, g: (i * 151) % 256, b: (i * 29) % 256 } } })
        .jpeg()
        .toBuffer();
    // Node-RED's mqtt in subscribes once it connects: publish until answers of both kinds have come (or 20 frames).
    // A frame whose answer was cut off goes to Catch, not to the answers: after 5 s without an answer, send the next.
    const end = Date.now() + 100_000;
    let sent = 0;
    let lastSent = 0;
    while (!(answers.some((a) => a.person) && answers.some((a) => !a.person)) && sent < 20) {
      if (Date.now() > end) throw new Error(`answers so far: ${JSON.stringify(answers)}\n${nr.log()}`);
      if (sent <= answers.length || Date.now() - lastSent > 5000) {
        await client.publishAsync('doorbell/snapshot', await frame(sent));
        sent++;
        lastSent = Date.now();
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, 500)); // the last notification
    assert.ok(answers.length > 0, nr.log());
    const check = validator(schema);
    for (const a of answers) check(a);
    const expected = answers.filter((a) => a.person).map((a) => `${a.count > 1 ? `${a.count} people` : 'Someone'} at the door: ${a.description}`);
    assert.deepStrictEqual(notifications, expected);
    assert.ok(answers.some((a) => a.person) && answers.some((a) => !a.person), `both kinds of answer: ${JSON.stringify(answers)}`);
  });
});
