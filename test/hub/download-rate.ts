// Download rate of our client against the Hub look-alike on loopback, side by side with two baselines fetching the
// same file from the same server to disk: curl, and a plain node:http response piped into fs.createWriteStream.
//   node dist/test/hub/download-rate.js [MB=200] [ROUNDS=5]
// download: HubClient.download of the CDN URL (the request curl and pipe make; sha256 and writes included).
// pull: the whole `pull` (listing, HEADs, the model's small files, the big one, links).
// Each round runs the four in a rotated order (so none always gets the same slot) and prints the rates, the
// ratios to curl and to the pipe, the CPU per MB of each client (and of the Node clients' main thread, their
// critical path) and of the server, and the load average; a last line gives the medians. The server runs in a child process, so this process's CPU time is its clients' alone.
import { ChildProcess, fork, spawn } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { HubClient } from '../../lib/hub/client';
import { parseRepoRef } from '../../lib/hub/repo-id';
import { pull } from '../../lib/hub/pull';
import { startHubServer } from '../support/hub-server';
import { multiVariantRepoDir, tempCache, testSettings } from './support';

const BIG = 'onnx/decoder_model_merged.onnx_data';
const METHODS = ['curl', 'pipe', 'download', 'pull'] as const;
type Method = (typeof METHODS)[number];

/**
 * The server process: builds the repo (a tiny model whose decoder has a big external-data file, the shape of a
 * real 200 MB+ graph) and serves it; answers 'cpu' with its CPU seconds; 'quit' removes the repo and exits.
 * Building here keeps the measuring process's heap as small as a downloader's.
 */
async function serve(mb: number): Promise<void> {
  const dir = multiVariantRepoDir();
  const out = fs.openSync(path.join(dir, BIG), 'w');
  for (let i = 0; i < mb; i++) fs.writeSync(out, randomBytes(1 << 20));
  fs.closeSync(out);
  const server = await startHubServer([{ repo: 'bench/big', dir }]);
  process.on('message', (m) => {
    if (m === 'quit') {
      fs.rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    }
    const used = process.cpuUsage();
    process.send!((used.user + used.system) / 1e6);
  });
  process.send!({ endpoint: server.endpoint, cdn: server.cdn, etag: server.repo('bench/big').files.get(BIG)!.etag });
}

function ask<T>(child: ChildProcess, question?: string): Promise<T> {
  const answer = new Promise<T>((resolve) => child.once('message', (m) => resolve(m as T)));
  if (question) child.send(question);
  return answer;
}

/** curl to a file; resolves with curl's CPU seconds (the shell's `times` for its children). */
function curl(url: string, target: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn('sh', ['-c', 'curl -sf -o "$1" "$2" && times', 'sh', target, url], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('error', reject);
    c.on('exit', (code) => {
      const children =
        out
          .trim()
          .split('\n')
          .at(-1)!
          .match(/(\d+)m([\d.]+)s/g) ?? [];
      const seconds = children.map((t) => Number(/^\d+/.exec(t)![0]) * 60 + Number(/m([\d.]+)s/.exec(t)![1])).reduce((a, b) => a + b, 0);
      if (code === 0) resolve(seconds);
      else reject(new Error(`curl exited with ${code}`));
    });
  });
}

function pipeToFile(url: string, target: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // A connection of its own, not pooled for the next client's request.
    http
      .get(url, { agent: false }, (res) => {
        const out = fs.createWriteStream(target);
        res.pipe(out);
        out.on('finish', resolve);
        out.on('error', reject);
      })
      .on('error', reject);
  });
}

/** This process's main-thread CPU seconds (Linux; NaN elsewhere): the critical path of a Node client. */
function mainThreadCpu(): number {
  try {
    const fields = fs.readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 10 ms
  } catch {
    return NaN;
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];
const round2 = (n: number) => Number(n.toFixed(2));

async function main(): Promise<void> {
  if (process.argv[2] === '--serve') return serve(Number(process.argv[3]));
  const mb = Number(process.argv[2] ?? 200);
  const rounds = Number(process.argv[3] ?? 5);
  const child = fork(__filename, ['--serve', String(mb)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const info = await ask<{ endpoint: string; cdn: string; etag: string }>(child);
  const url = `${info.cdn}/${info.etag}`;
  const megabytes = (mb << 20) / 1e6; // the big file; pull's other files add under 1 MB
  const target = path.join(os.tmpdir(), `llava-rate-${process.pid}`);
  /** Each method; what it resolves with is the CPU seconds of a client outside this process. */
  const methods: Record<Method, () => Promise<number | void>> = {
    curl: () => curl(url, target),
    pipe: () => pipeToFile(url, target),
    download: async () => {
      await new HubClient(testSettings(info.endpoint, os.tmpdir())).download(url, target, { size: mb << 20, digest: 'sha256' });
    },
    pull: async () => {
      const cacheDir = tempCache();
      try {
        const result = await pull(parseRepoRef('bench/big'), { settings: testSettings(info.endpoint, cacheDir), variant: 'fp32' });
        if (!result.selection.files.includes(BIG)) throw new Error('the external data was not selected');
      } finally {
        fs.rmSync(cacheDir, { recursive: true, force: true });
      }
    },
  };
  const all: { rate: Record<Method, number>; cpu: Record<Method, number>; mainCpu: Record<Method, number> }[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      const load = os.loadavg()[0];
      const order = METHODS.map((_, i) => METHODS[(r + i) % METHODS.length]);
      const rate = {} as Record<Method, number>;
      const cpu = {} as Record<Method, number>;
      const serverCpu = {} as Record<Method, number>;
      const mainCpu = {} as Record<Method, number>;
      for (const name of order) {
        fs.rmSync(target, { force: true });
        const server0 = await ask<number>(child, 'cpu');
        const cpu0 = process.cpuUsage();
        const main0 = mainThreadCpu();
        const t = process.hrtime.bigint();
        const outside = await methods[name]();
        const seconds = Number(process.hrtime.bigint() - t) / 1e9;
        const used = process.cpuUsage(cpu0);
        if (name !== 'curl') mainCpu[name] = round2(((mainThreadCpu() - main0) * 1000) / megabytes);
        serverCpu[name] = round2((((await ask<number>(child, 'cpu')) - server0) * 1000) / megabytes);
        rate[name] = Math.round(megabytes / seconds);
        cpu[name] = round2(((typeof outside === 'number' ? outside : (used.user + used.system) / 1e6) * 1000) / megabytes);
      }
      fs.rmSync(target, { force: true });
      all.push({ rate, cpu, mainCpu });
      console.log(
        JSON.stringify({
          round: r + 1,
          megabytes: mb,
          order: order.join(','),
          MB_per_s: rate,
          download_over_curl: round2(rate.download / rate.curl),
          download_over_pipe: round2(rate.download / rate.pipe),
          pull_over_curl: round2(rate.pull / rate.curl),
          client_cpu_ms_per_MB: cpu,
          main_thread_cpu_ms_per_MB: mainCpu,
          server_cpu_ms_per_MB: serverCpu,
          load_average: [load, os.loadavg()[0]].map((l) => Number(l.toFixed(1))),
        }),
      );
    }
    const med = (pick: (x: (typeof all)[number]) => number) => median(all.map(pick));
    console.log(
      JSON.stringify({
        median_of_rounds: rounds,
        MB_per_s: Object.fromEntries(METHODS.map((m) => [m, med((x) => x.rate[m])])),
        download_over_curl: round2(med((x) => x.rate.download / x.rate.curl)),
        download_over_pipe: round2(med((x) => x.rate.download / x.rate.pipe)),
        pull_over_curl: round2(med((x) => x.rate.pull / x.rate.curl)),
        client_cpu_ms_per_MB: Object.fromEntries(METHODS.map((m) => [m, med((x) => x.cpu[m])])),
        main_thread_cpu_ms_per_MB: Object.fromEntries(METHODS.slice(1).map((m) => [m, med((x) => x.mainCpu[m])])),
      }),
    );
  } finally {
    child.send('quit');
    fs.rmSync(target, { force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
