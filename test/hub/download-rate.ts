// Download rate of `pull` against the Hub look-alike on loopback, beside curl fetching the same file to disk:
//   node dist/test/hub/download-rate.js [MB=200]
// The server runs in a child process so this process's CPU time is the client's alone (HTTP, sha256, writes).
import { spawn, spawnSync } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseRepoRef } from '../../lib/hub/repo-id';
import { pull } from '../../lib/hub/pull';
import { startHubServer } from '../support/hub-server';
import { multiVariantRepoDir, tempCache, testSettings } from './support';

async function serve(dir: string): Promise<void> {
  const server = await startHubServer([{ repo: 'bench/big', dir }]);
  process.stdout.write(`${JSON.stringify({ endpoint: server.endpoint, cdn: server.cdn, etag: server.repo('bench/big').files.get('onnx/decoder_model_merged.onnx_data')!.etag })}\n`);
}

async function main(): Promise<void> {
  if (process.argv[2] === '--serve') return serve(process.argv[3]);
  const mb = Number(process.argv[2] ?? 200);
  // A tiny model whose decoder has a big external-data file (the shape of a real 200 MB+ graph).
  const repo = multiVariantRepoDir();
  const out = fs.openSync(path.join(repo, 'onnx', 'decoder_model_merged.onnx_data'), 'w');
  for (let i = 0; i < mb; i++) fs.writeSync(out, randomBytes(1 << 20));
  fs.closeSync(out);
  const child = spawn(process.execPath, [__filename, '--serve', repo], { stdio: ['ignore', 'pipe', 'inherit'] });
  const info = await new Promise<{ endpoint: string; cdn: string; etag: string }>((resolve) =>
    child.stdout!.once('data', (d) => resolve(JSON.parse(String(d).split('\n')[0]))),
  );
  const bytes = mb << 20; // the big file; the model's other files add under 1 MB
  try {
    const curlTarget = path.join(os.tmpdir(), `llava-rate-curl-${process.pid}`);
    let t = process.hrtime.bigint();
    const curl = spawnSync('curl', ['-s', '-o', curlTarget, `${info.cdn}/${info.etag}`]);
    const curlSeconds = Number(process.hrtime.bigint() - t) / 1e9;
    fs.rmSync(curlTarget, { force: true });

    const cacheDir = tempCache();
    const cpu = process.cpuUsage();
    t = process.hrtime.bigint();
    const result = await pull(parseRepoRef('bench/big'), { settings: testSettings(info.endpoint, cacheDir), variant: 'fp32' });
    const seconds = Number(process.hrtime.bigint() - t) / 1e9;
    const used = process.cpuUsage(cpu);
    const cpuSeconds = (used.user + used.system) / 1e6;
    if (!result.selection.files.includes('onnx/decoder_model_merged.onnx_data')) throw new Error('the external data was not selected');
    fs.rmSync(cacheDir, { recursive: true, force: true });
    const rate = (s: number) => (bytes / 1e6 / s).toFixed(0);
    console.log(JSON.stringify({
      megabytes: mb,
      pull_MB_per_s: Number(rate(seconds)),
      curl_MB_per_s: curl.status === 0 ? Number(rate(curlSeconds)) : null,
      pull_cpu_s: Number(cpuSeconds.toFixed(2)),
      pull_cpu_ms_per_MB: Number(((cpuSeconds * 1000) / (bytes / 1e6)).toFixed(2)),
      load_average: os.loadavg().map((l) => Number(l.toFixed(1))),
    }));
  } finally {
    child.kill();
    fs.rmSync(repo, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
