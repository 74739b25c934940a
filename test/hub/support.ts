// Fixture repos for the Hub tests: tiny models from our builder, served by test/support/hub-server.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { hubSettings, HubSettings } from '../../lib/hub/settings';
import { tinyModel } from '../support/tiny-model';

/**
 * A transformers.js-layout repo holding the fp32 model and, from the same seeded weights, a q4 decoder: the way
 * Hub ONNX repos offer several weight variants side by side.
 */
export function multiVariantRepoDir(): string {
  const fp32 = tinyModel({ decoder: 'optimized' });
  const q4 = tinyModel({ decoder: 'optimized', quantize: 'int4' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-hub-repo-'));
  fs.cpSync(fp32.dir, dir, { recursive: true });
  fs.copyFileSync(path.join(q4.dir, 'onnx', 'decoder_model_merged_q4.onnx'), path.join(dir, 'onnx', 'decoder_model_merged_q4.onnx'));
  fs.writeFileSync(path.join(dir, 'README.md'), '# tiny llava\n');
  return dir;
}

export function tempCache(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'llava-hub-cache-'));
}

/** Settings for one test: its own cache, the test server, nothing from this machine's environment. */
export function testSettings(endpoint: string, cacheDir: string, extra: Partial<HubSettings> = {}): HubSettings {
  return hubSettings({ endpoint, cacheDir, ...extra }, {});
}
