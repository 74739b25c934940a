// `npm run bench:serve`: `llava serve` throughput with 1, 2 and 4 concurrent clients, and what the remote path adds
// over running the same request in this process. The 0.5b benchmark model (int4 decoder, built and cached by the
// main benchmark's builder), greedy, a fixed number of new tokens; JSON to bench/results/serve-*.json.
//   node dist/bench/serve.js [--family 0.5b|tiny] [--tokens N] [--requests N] [--clients 1,2,4]
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import { imageForRemote } from '../lib/engine/image-for-remote';
import { LocalEngine } from '../lib/engine/local-engine';
import { RemoteEngine } from '../lib/engine/remote-engine';
import type { Engine, EngineRequest, EngineResult } from '../lib/engine/types';
import { LlavaModel } from '../lib/pipeline/llava-model';
import { getRuntime } from '../lib/runtime';
import { benchImage } from './image';
import { ensureModel, modelSpecs } from './models';

const ROOT = path.resolve(__dirname, '..', '..');
const CACHE_DIR = path.join(ROOT, '.cache', 'bench');
const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
const CLI = path.join(ROOT, 'dist', 'lib', 'cli.js');

function log(line: string): void {
  process.stderr.write(`[bench serve ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2 : NaN;
}

async function startServer(dir: string, parallel: number): Promise<{ url: string; stop(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--model', dir, '--port', '0', '--provider', 'cpu', '--parallel', String(parallel), '--model-name', 'bench'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
  for (const deadline = Date.now() + 300_000; ;) {
    const url = /listening on (\S+)/.exec(out)?.[1];
    if (
      url &&
      (await fetch(`${url}/health`).then(
        (r) => r.ok,
        () => false,
      ))
    )
      return { url, stop };
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`llava serve did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** `clients` loops, each sending requests one after another until `total` are done; wall time and results. */
async function load(engine: Engine, request: EngineRequest, clients: number, total: number): Promise<{ wallMs: number; results: EngineResult[] }> {
  const results: EngineResult[] = [];
  let started = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (started < total) {
        started++;
        results.push(await engine.generate(request));
      }
    }),
  );
  return { wallMs: performance.now() - t0, results };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { family: { type: 'string' }, tokens: { type: 'string' }, requests: { type: 'string' }, clients: { type: 'string' } },
  });
  const family = values.family ?? '0.5b';
  const tokens = Number(values.tokens ?? 8);
  const perClient = Number(values.requests ?? 2);
  const clientCounts = (values.clients ?? '1,2,4').split(',').map(Number);
  const spec = modelSpecs(true).find((s) => s.name === family && s.quantize === 'int4');
  if (!spec) throw new Error(`no benchmark model family ${family}`);
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  const model = ensureModel(spec, CACHE_DIR, log);
  const image = fs.readFileSync(await benchImage(CACHE_DIR));
  const request: EngineRequest = { image, chat: {}, options: { maxNewTokens: tokens, doSample: false } };
  const loadBefore = os.loadavg();
  log(`model ${family} int4 at ${model.dir}; ${tokens} new tokens; load average ${loadBefore.map((l) => l.toFixed(1)).join('/')}`);

  // One server for every client count: --parallel 4 admits all of them (the runtime still runs one ORT call at a time).
  const server = await startServer(model.dir, Math.max(...clientCounts));
  const remote = new RemoteEngine({
    baseUrl: server.url,
    model: 'bench',
    concurrency: Math.max(...clientCounts),
    timeouts: { firstTokenMs: 600_000, totalMs: 900_000 },
  });
  const throughput: Array<Record<string, number>> = [];
  try {
    await remote.generate(request); // warm-up: sessions, caches
    for (const clients of clientCounts) {
      const { wallMs, results } = await load(remote, request, clients, clients * perClient);
      const newTokens = results.reduce((a, r) => a + (r.usage?.completionTokens ?? 0), 0);
      const row = {
        clients,
        requests: results.length,
        requests_per_min: (results.length / wallMs) * 60_000,
        tokens_per_s: (newTokens / wallMs) * 1000,
        latency_median_ms: median(results.map((r) => r.timings.total_ms)),
        first_token_median_ms: median(results.map((r) => r.timings.first_token_ms ?? NaN)),
      };
      throughput.push(row);
      log(
        `${clients} client(s): ${row.requests_per_min.toFixed(2)} requests/min, ${row.tokens_per_s.toFixed(2)} tok/s, median latency ${row.latency_median_ms.toFixed(0)} ms`,
      );
    }

    // The remote path's cost: the same request here (LocalEngine) and through the server, alternating, one at a time,
    // on the JPEG the remote engine would send (so both sides decode the same bytes and only the path differs).
    const sent = { ...request, image: (await imageForRemote(image)).jpeg };
    const local = new LocalEngine(await LlavaModel.load(model.dir, { providers: 'cpu' }));
    const pairs: Array<{ local: number; remote: number }> = [];
    try {
      await local.generate(sent);
      for (let i = 0; i < perClient + 1; i++) {
        const l = await local.generate(sent);
        const r = await remote.generate(sent);
        pairs.push({ local: l.timings.total_ms, remote: r.timings.total_ms });
      }
    } finally {
      await local.close();
    }
    const added = median(pairs.map((p) => p.remote - p.local));
    log(
      `remote over local: median ${added.toFixed(0)} ms per request (local ${median(pairs.map((p) => p.local)).toFixed(0)} ms, remote ${median(pairs.map((p) => p.remote)).toFixed(0)} ms)`,
    );
    const loadAfter = os.loadavg();
    const report = {
      family,
      variant: 'int4',
      tokens,
      image: '1920x1080 JPEG',
      throughput,
      remoteOverLocal: { pairs, medianAddedMs: added },
      loadBefore,
      loadAfter,
      cpus: os.cpus().length,
    };
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    const file = path.join(RESULTS_DIR, `serve-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    fs.writeFileSync(file, JSON.stringify(report, null, 2));
    process.stdout.write(
      [
        `| clients | requests/min | new tok/s | median latency ms | median first token ms |`,
        `|--:|--:|--:|--:|--:|`,
        ...throughput.map(
          (r) =>
            `| ${r.clients} | ${r.requests_per_min.toFixed(2)} | ${r.tokens_per_s.toFixed(2)} | ${r.latency_median_ms.toFixed(0)} | ${r.first_token_median_ms.toFixed(0)} |`,
        ),
        '',
        `remote path over local: median ${added >= 0 ? '+' : ''}${added.toFixed(0)} ms per request (${pairs.length} alternating pairs)`,
        `load average ${loadBefore.map((l) => l.toFixed(1)).join('/')} → ${loadAfter.map((l) => l.toFixed(1)).join('/')}; ${file}`,
        '',
      ].join('\n'),
    );
  } finally {
    await remote.close();
    await server.stop();
    await getRuntime().dispose();
  }
}

main().catch((err) => {
  process.stderr.write(`bench serve: ${err instanceof Error ? err.stack : err}\n`);
  process.exitCode = 1;
});
