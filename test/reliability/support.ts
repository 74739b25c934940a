// Shared pieces of the reliability specs: a flow with every LLaVA stage and a Catch node, an outcome ledger that
// proves every message ended in an output or a caught error, the test images (good and hostile) and a CLI runner.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { getRuntime } from '../../lib/runtime';
import { paintedImage, pngClaiming, toSharp } from '../support/synthetic-images';
import { helper, repoRoot } from '../support/node-red';
import { processCpuMs } from '../support/cpu-time';

export type Msg = Record<string, any>;

export const llavaNodes = ['llava-model', 'llava-image-load', 'llava-clip-encode', 'llava-project', 'llava-prompt-template', 'llava-generate'].map((t) =>
  require(path.join(repoRoot, 'dist', 'nodes', `${t}.js`)),
);

/** On a tab, Node-RED takes nodes without x/y for config nodes. */
export const onTab = (n: Msg, tab = 'tab'): Msg => ({ z: tab, x: 100, y: 100, ...n });

export function modelConfig(id: string, modelDir: string, extra: Msg = {}): Msg {
  return { id, type: 'llava-model', modelDir, provider: 'cpu', threads: 1, variant: 'fp32', preset: 'auto', imageRoots: '', ...extra };
}

/**
 * The test tab with its Catch node (→ helper `caught`). One Catch node per test flow: the test helper loads the
 * catch module once per catch node it finds, and a second registration fails.
 */
export function catchTab(tab = 'tab'): Msg[] {
  return [
    { id: tab, type: 'tab' },
    onTab({ id: 'catch', type: 'catch', scope: null, uncaught: false, wires: [['caught']] }, tab),
    onTab({ id: 'caught', type: 'helper' }, tab),
  ];
}

/**
 * image load → clip encode → project → prompt template (question from msg.question) → generate, every id prefixed
 * with `p`, generate's outputs to helper nodes `<p>out`, `<p>partial` and `<p>dropped`.
 */
export function pipeline(p: string, modelId: string, options: { load?: Msg; generate?: Msg; prompt?: Msg; tab?: string } = {}): Msg[] {
  const tab = options.tab ?? 'tab';
  return [
    { id: `${p}load`, type: 'llava-image-load', model: modelId, wires: [[`${p}encode`]], ...options.load },
    { id: `${p}encode`, type: 'llava-clip-encode', model: modelId, wires: [[`${p}project`]] },
    { id: `${p}project`, type: 'llava-project', model: modelId, wires: [[`${p}prompt`]] },
    {
      id: `${p}prompt`,
      type: 'llava-prompt-template',
      preset: 'vicuna_v1',
      question: 'question',
      questionType: 'msg',
      wires: [[`${p}generate`]],
      ...options.prompt,
    },
    {
      id: `${p}generate`,
      type: 'llava-generate',
      model: modelId,
      stream: true,
      maxNewTokens: '4',
      queuePolicy: 'fifo',
      queueLength: 100,
      dropped: 'output',
      wires: [[`${p}out`], [`${p}partial`], [`${p}dropped`]],
      ...options.generate,
    },
    { id: `${p}out`, type: 'helper' },
    { id: `${p}partial`, type: 'helper' },
    { id: `${p}dropped`, type: 'helper' },
  ].map((n) => onTab(n, tab));
}

export interface Outcome {
  kind: 'output' | 'error' | 'dropped';
  msg: Msg;
}

/**
 * Records how each message ended, by its `tag` field: at helper nodes listed as outputs / drops, or at a Catch
 * node's helper. A message that ends twice, or never, is what the reliability specs look for.
 */
export class Ledger {
  readonly outcomes = new Map<string, Outcome[]>();
  private waiters: Array<() => void> = [];

  constructor(ids: { outputs?: string[]; errors?: string[]; dropped?: string[] }) {
    const listen = (id: string, kind: Outcome['kind']) =>
      helper.getNode(id).on('input', (msg: Msg) => {
        const tag = String(msg.tag);
        this.outcomes.set(tag, [...(this.outcomes.get(tag) ?? []), { kind, msg }]);
        for (const w of this.waiters.splice(0)) w();
      });
    for (const id of ids.outputs ?? []) listen(id, 'output');
    for (const id of ids.errors ?? []) listen(id, 'error');
    for (const id of ids.dropped ?? []) listen(id, 'dropped');
  }

  /** Waits until `tags` all have an outcome; rejects naming the ones that never ended. */
  async settle(tags: string[], timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!tags.every((t) => this.outcomes.has(t))) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no outcome for ${tags.filter((t) => !this.outcomes.has(t)).join(', ')} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 500));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The one outcome of `tag` (fails if it ended more than once). */
  only(tag: string): Outcome {
    const list = this.outcomes.get(tag) ?? [];
    if (list.length !== 1) throw new Error(`message ${tag} ended ${list.length} times: ${list.map((o) => o.kind).join(', ')}`);
    return list[0];
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits for the runtime's handle count to come back to `baseline` (frees are asynchronous); returns the count. */
export async function handlesSettle(baseline: number, timeoutMs = 10_000): Promise<number> {
  const runtime = getRuntime();
  const deadline = Date.now() + timeoutMs;
  while (runtime.stats().handles !== baseline && Date.now() < deadline) await delay(25);
  return runtime.stats().handles;
}

/** Waits until the model config node `id` has finished loading (ready or error). */
export async function modelSettled(id: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((helper.getNode(id) as unknown as { modelState?: { state: string } } | undefined)?.modelState?.state === 'loading') {
    if (Date.now() > deadline) throw new Error(`model ${id} still loading after ${timeoutMs} ms`);
    await delay(20);
  }
}

// ---- images ----

export interface ImageCase {
  name: string;
  bytes: Buffer;
  /** A good image: its decoded size (after EXIF orientation). A hostile one: what its error must say. */
  expect: { width: number; height: number } | RegExp;
}

const RED = [200, 40, 40];

/** Every image the issue lists: inputs that must fail with a clear error and unusual images that must work. */
export async function imageCases(): Promise<ImageCase[]> {
  const jpeg = await toSharp(paintedImage(64, 48, RED, [{ left: 0, top: 0, width: 32, height: 24, colour: [20, 20, 220] }]))
    .jpeg()
    .toBuffer();
  const random = Buffer.alloc(4096);
  for (let i = 0; i < random.length; i++) random[i] = (i * 7919 + 13) % 251;
  const stored = paintedImage(40, 20, RED, []);
  const gifFrames = paintedImage(16, 32, RED, [{ left: 0, top: 16, width: 16, height: 16, colour: [20, 20, 220] }]);
  const rgba = { data: new Uint8Array(24 * 24 * 4).fill(128), width: 24, height: 24, channels: 4 };
  const notDecodable = /not a decodable image: /;
  return [
    { name: 'empty buffer', bytes: Buffer.alloc(0), expect: /is empty \(0 bytes\)/ },
    { name: 'truncated JPEG', bytes: jpeg.subarray(0, jpeg.length >> 1), expect: notDecodable },
    { name: 'random bytes', bytes: random, expect: notDecodable },
    { name: 'plain text', bytes: Buffer.from('hello, this is not an image\n'), expect: notDecodable },
    { name: 'decompression bomb (100000×100000 header)', bytes: pngClaiming(100000, 100000), expect: /100000×100000 .*maxInputPixels cap of 100000000/ },
    {
      name: '1×1',
      bytes: await toSharp(paintedImage(1, 1, RED, []))
        .png()
        .toBuffer(),
      expect: { width: 1, height: 1 },
    },
    {
      name: 'animated GIF',
      bytes: await sharp(gifFrames.data, { raw: { width: 16, height: 32, channels: 3, pageHeight: 16 } })
        .gif()
        .toBuffer(),
      expect: { width: 16, height: 16 },
    },
    {
      name: 'CMYK JPEG',
      bytes: await toSharp(paintedImage(32, 32, RED, []))
        .toColourspace('cmyk')
        .jpeg()
        .toBuffer(),
      expect: { width: 32, height: 32 },
    },
    {
      name: '16-bit PNG',
      bytes: await toSharp(paintedImage(16, 16, RED, []))
        .toColourspace('rgb16')
        .png()
        .toBuffer(),
      expect: { width: 16, height: 16 },
    },
    {
      name: 'grayscale',
      bytes: await toSharp(paintedImage(20, 10, [90, 90, 90], []))
        .toColourspace('b-w')
        .png()
        .toBuffer(),
      expect: { width: 20, height: 10 },
    },
    {
      name: 'alpha channel',
      bytes: await sharp(rgba.data, { raw: { width: 24, height: 24, channels: 4 } })
        .png()
        .toBuffer(),
      expect: { width: 24, height: 24 },
    },
    { name: 'EXIF rotation 6', bytes: await toSharp(stored).jpeg().withMetadata({ orientation: 6 }).toBuffer(), expect: { width: 20, height: 40 } },
  ];
}

/** A plain camera frame. */
export function frame(seed = 0, width = 64, height = 48): Promise<Buffer> {
  const c = [(seed * 37) % 256, (seed * 91 + 50) % 256, (seed * 53 + 100) % 256];
  return toSharp(paintedImage(width, height, c, [{ left: 8, top: 8, width: 16, height: 16, colour: [255 - c[0], 255 - c[1], 255 - c[2]] }]))
    .jpeg()
    .toBuffer();
}

// ---- the CLI as a user runs it ----

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall-clock time: for messages only (another process on the machine stretches it). */
  ms: number;
  /**
   * CPU time of the child (user + system, all threads) in ms, sampled from /proc until it exits: what a sanity bound
   * on "fast" checks, as a busy machine does not inflate it. Null where /proc cannot tell.
   */
  cpuMs: number | null;
  /** Peak resident memory of the child in MB (Linux /proc VmHWM, sampled until exit); null elsewhere. */
  peakMb: number | null;
}

const CLI = path.join(repoRoot, 'dist', 'lib', 'cli.js');

export function runCli(args: string[], timeoutMs = 60_000): Promise<CliRun> {
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let peakMb: number | null = null;
  let cpuMs: number | null = null;
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const sample = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peakMb = Math.max(peakMb ?? 0, Number(m[1]) / 1024);
      cpuMs = processCpuMs(child.pid!) ?? cpuMs;
    } catch {
      // not Linux, or the child has exited
    }
  }, 20);
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(sample);
      clearTimeout(killer);
      resolve({ code, stdout, stderr, ms: Date.now() - started, cpuMs, peakMb });
    });
  });
}

/** Runs `jobs` with at most `limit` at a time (CLI children each load ORT; a few in parallel keep specs fast). */
export async function inBatches<T, R>(items: T[], limit: number, job: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await job(items[i]);
      }
    }),
  );
  return results;
}

/** The non-empty lines a CLI run wrote on stderr. */
export function stderrLines(run: CliRun): string[] {
  return run.stderr.split('\n').filter((l) => l.trim() !== '');
}
