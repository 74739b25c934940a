// The mqtt-camera example as shipped, in a real Node-RED with a real Mosquitto and the npm-start demo model:
// JPEG bytes on camera/<name>/snapshot come back as a caption on camera/<name>/caption.
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import mqtt = require('mqtt');
import sharp from 'sharp';
import { Broker, startBroker } from '../support/broker';
import { requireSystemPackages } from '../support/system-packages';
import { RunningNodeRed, repoRoot, startNodeRed } from '../support/node-red';

/** The demo model `npm start` uses (demo-model/, trained on synthetic shapes). */
const DEMO_MODEL_DIR = path.join(repoRoot, 'demo-model');

function cameraFlow(broker: Broker, modelDir: string): any[] {
  const flow: any[] = JSON.parse(fs.readFileSync(path.join(repoRoot, 'examples', 'mqtt-camera.json'), 'utf8'));
  const z = flow.find((n) => n.z)!.z;
  for (const n of flow) {
    if (n.type === 'mqtt-broker') n.port = String(broker.port);
    if (n.type === 'llava-model') n.modelDir = modelDir;
  }
  return [{ id: z, type: 'tab', label: 'mqtt camera' }, ...flow];
}

describe('package: the mqtt-camera example end to end (Mosquitto + demo model)', function () {
  let dir: string;
  let broker: Broker;
  let nr: RunningNodeRed;
  let client: mqtt.MqttClient;

  before(async function () {
    requireSystemPackages(this, 'mosquitto');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-mqtt-example-'));
    broker = await startBroker();
    nr = await startNodeRed({ flows: cameraFlow(broker, DEMO_MODEL_DIR) });
    client = await mqtt.connectAsync(broker.url);
  });
  after(async function () {
    await client?.endAsync();
    await nr?.stop();
    await broker?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers each camera on camera/<name>/caption', async () => {
    const captions = new Map<string, string>();
    await client.subscribeAsync('camera/+/caption');
    client.on('message', (topic, payload) => captions.set(topic, payload.toString('utf8')));
    const frame = (r: number, g: number, b: number) =>
      sharp({ create: { width: 64, height: 48, channels: 3, background: { r, g, b } } })
        .jpeg()
        .toBuffer();
    // Node-RED's mqtt in subscribes once it connects: keep publishing until the first caption arrives.
    const end = Date.now() + 60_000;
    while (captions.size < 2) {
      if (Date.now() > end) throw new Error(`captions so far: ${JSON.stringify([...captions])}\n${nr.log()}`);
      await client.publishAsync('camera/door/snapshot', await frame(200, 30, 30));
      await client.publishAsync('camera/yard/snapshot', await frame(30, 200, 30));
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.deepStrictEqual([...captions.keys()].sort(), ['camera/door/caption', 'camera/yard/caption']);
    for (const text of captions.values()) assert.ok(text.length > 0, 'a non-empty caption');
  });
});
