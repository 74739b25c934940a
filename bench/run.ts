// `npm run bench`: builds (or reuses, under .cache/bench) the benchmark model folders, runs this project's
// pipeline, transformers.js, a bare onnxruntime decode loop and llama.cpp (on a GGUF of the same weights) side by
// side on each, the int4 pair again beside a busy-loop neighbour process, sweeps onnxruntime session options for
// the vision encoder, measures memory bandwidth, prints a table and writes JSON to bench/results/. Rows that measure
// one of the pipeline's own choices (KV cache copy, thread spinning, the inference threads below the main thread's
// priority, the bare loop without spinning or beside the neighbour) run only when --engines names them.
//   node dist/bench/run.js [--quick] [--repeats N] [--tokens N] [--only FAMILY|FOLDER[,…]] [--engines LABEL[,LABEL]]
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import { measureBandwidth } from './bandwidth';
import { CaseInput, CaseKind, CaseOutput, RESULT_PREFIX } from './cases/types';
import { benchImage } from './image';
import { benchPreprocess, preprocessLines } from './preprocess';
import { BATCH_SIZES } from './cases/batching';
import { batchingLines } from './report';
import { BuiltModel, ensureGguf, ensureModel, folderName, modelSpecs } from './models';
import { CaseSummary, FamilySummary, printReport, summarize } from './report';

const ROOT = path.resolve(__dirname, '..', '..');
const CACHE_DIR = path.join(ROOT, '.cache', 'bench');
const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
const PROMPT = 'USER: <image>\nDescribe the image in detail. ASSISTANT:';
/** The families continuous batching is measured on (their optimized int4 folder). */
const BATCHING_FAMILIES = ['tiny', '0.5b'];

interface Engine {
  /** The row's name in the tables and the JSON. */
  label: string;
  kind: CaseKind;
  /** Run beside a busy-loop neighbour process (one core's worth of competing work, as on a shared machine). */
  busy?: boolean;
  /** Case input over the defaults (a pipeline or session option the row measures). */
  input?: Pick<CaseInput, 'kvCache' | 'sessionConfig' | 'niceness'>;
  /** Run only when named in --engines (rows that measure one of the pipeline's choices). */
  optIn?: boolean;
}

const spinning = (on: boolean) => ({ 'session.intra_op.allow_spinning': on ? '1' : '0', 'session.inter_op.allow_spinning': on ? '1' : '0' });

/** In this order within each round: ours first (the others take its prompt length). */
export const ENGINES: Engine[] = [
  { label: 'ours', kind: 'ours' },
  { label: 'transformers.js', kind: 'transformers.js' },
  { label: 'bare-ort', kind: 'bare-ort' },
  { label: 'llama.cpp', kind: 'llama.cpp' },
  { label: 'ours busy', kind: 'ours', busy: true },
  { label: 'llama.cpp busy', kind: 'llama.cpp', busy: true },
  { label: 'ours kv-copy', kind: 'ours', input: { kvCache: 'copy' }, optIn: true },
  { label: 'ours nice3', kind: 'ours', input: { niceness: 3 }, optIn: true },
  { label: 'ours nice3 busy', kind: 'ours', busy: true, input: { niceness: 3 }, optIn: true },
  { label: 'ours spin', kind: 'ours', input: { sessionConfig: { ...spinning(true), 'session.force_spinning_stop': '1' } }, optIn: true },
  { label: 'bare-ort nospin', kind: 'bare-ort', input: { sessionConfig: spinning(false) }, optIn: true },
  { label: 'bare-ort busy', kind: 'bare-ort', busy: true, optIn: true },
];

function wanted(engine: Engine, model: BuiltModel, gguf: string | null, only: string[] | undefined): boolean {
  if (only ? !only.includes(engine.label) : engine.optIn) return false;
  if (engine.kind === 'llama.cpp' && !gguf) return false;
  // A quantized vision tower only changes our TTFT.
  if (model.spec.quantizeVision) return engine.label === 'ours';
  // The neighbour rows are the int4 pair only (the comparison the target is stated for).
  return !engine.busy || model.spec.quantize === 'int4';
}

/** Runs `work` while a child process spins on one core. */
async function besideBusyNeighbour<T>(work: () => Promise<T>): Promise<T> {
  const neighbour = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  try {
    return await work();
  } finally {
    neighbour.kill('SIGKILL');
  }
}

function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function runCase(input: CaseInput): Promise<CaseOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'case.js'), JSON.stringify(input)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => {
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
      if (code === 0 && line) {
        resolve(JSON.parse(line.slice(RESULT_PREFIX.length)) as CaseOutput);
        return;
      }
      const lines = stderr.trim().split('\n');
      const reason = lines.find((l) => /^\w*Error\b/.test(l)) ?? lines.slice(-3).join(' | ');
      reject(new Error(`${input.kind} on ${path.basename(input.model.dir)} exited ${code}: ${reason}`));
    });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      repeats: { type: 'string' },
      tokens: { type: 'string' },
      only: { type: 'string' },
      engines: { type: 'string' },
    },
    strict: true,
  });
  const quick = values.quick ?? false;
  const repeats = Number(values.repeats ?? (quick ? 1 : 3));
  const tokens = Number(values.tokens ?? (quick ? 16 : 32));
  if (!(Number.isInteger(repeats) && repeats >= 1)) throw new Error(`--repeats must be a positive integer, got ${values.repeats}`);
  if (!(Number.isInteger(tokens) && tokens >= 2)) throw new Error(`--tokens must be an integer ≥ 2, got ${values.tokens}`);
  const only = values.only?.split(',');
  const engineLabels = values.engines?.split(',');
  const unknown = engineLabels?.filter((l) => !ENGINES.some((e) => e.label === l));
  if (unknown?.length) throw new Error(`--engines: unknown ${unknown.join(', ')} (labels: ${ENGINES.map((e) => e.label).join(', ')})`);
  const specs = modelSpecs(quick).filter((s) => !only || only.includes(s.name) || only.includes(folderName(s)));
  if (specs.length === 0) throw new Error(`--only ${values.only} matches no model (names: ${[...new Set(modelSpecs(false).map((s) => s.name))].join(', ')})`);

  const started = Date.now();
  const loadStart = os.loadavg();
  log(`${specs.length} model folders, ${repeats} repeat(s), ${tokens} tokens; load average ${loadStart.map((l) => l.toFixed(1)).join(' ')}`);
  const image = await benchImage(CACHE_DIR);
  const preprocess = await benchPreprocess(image, 15);
  const models: BuiltModel[] = specs.map((s) => ensureModel(s, CACHE_DIR, log));
  // Measured before and after the cases; the higher figure counts (other load only ever lowers it).
  let bandwidth = await measureBandwidth(CACHE_DIR);
  log(`memory read bandwidth ${(bandwidth.bytesPerSecond / 1e9).toFixed(1)} GB/s`);

  const outputs = new Map<BuiltModel, Record<string, CaseOutput[]>>();
  const errors: string[] = [];
  const visionSweeps = new Map<string, Record<string, number>>();
  const batching = new Map<BuiltModel, CaseOutput>();
  for (const model of models) {
    const perEngine: Record<string, CaseOutput[]> = {};
    outputs.set(model, perEngine);
    const gguf = ensureGguf(model, log);
    const base = { model, image, tokens, repeats: 1, prompt: PROMPT, gguf: gguf ?? undefined };
    // Engines alternate within each repeat, so a change in the machine's load hits all of them alike.
    for (let r = 0; r < repeats; r++) {
      let promptTokens = 0;
      for (const engine of ENGINES.filter((e) => wanted(e, model, gguf, engineLabels))) {
        log(`${path.basename(model.dir)}: ${engine.label} (${r + 1}/${repeats})`);
        try {
          const run = () => runCase({ ...base, ...engine.input, kind: engine.kind, contextTokens: promptTokens });
          const out = engine.busy ? await besideBusyNeighbour(run) : await run();
          if (engine.label === 'ours') promptTokens = out.runs[0].prompt_tokens;
          (perEngine[engine.label] ??= []).push(out);
        } catch (e) {
          errors.push((e as Error).message);
          log((e as Error).message);
        }
      }
    }
    if (BATCHING_FAMILIES.includes(model.spec.name) && model.spec.quantize === 'int4' && !model.spec.quantizeVision && !engineLabels) {
      log(`${path.basename(model.dir)}: continuous batching, ${BATCH_SIZES.join('/')} requests at once against one at a time`);
      try {
        batching.set(model, await runCase({ ...base, kind: 'batching', repeats }));
      } catch (e) {
        errors.push((e as Error).message);
        log((e as Error).message);
      }
    }
    if (!visionSweeps.has(model.spec.name) && !engineLabels) {
      log(`${model.spec.name}: vision encoder session-option sweep`);
      try {
        visionSweeps.set(model.spec.name, (await runCase({ ...base, kind: 'vision-sweep', repeats: 3 })).configs ?? {});
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
  }

  const again = await measureBandwidth(CACHE_DIR);
  if (again.bytesPerSecond > bandwidth.bytesPerSecond) bandwidth = again;
  const cases: CaseSummary[] = models.map((m) => summarize(m, outputs.get(m) ?? {}, bandwidth.bytesPerSecond));
  const families: FamilySummary[] = [...new Set(models.map((m) => m.spec.name))].map((name) => ({
    name,
    visionSweep: visionSweeps.get(name) ?? {},
  }));
  const loadEnd = os.loadavg();
  const seconds = (Date.now() - started) / 1000;
  printReport(cases, families, { bandwidth, loadStart, loadEnd, seconds, repeats, tokens });
  process.stdout.write(`${preprocessLines(preprocess).join('\n')}\n`);
  process.stdout.write(`${batchingLines([...batching].map(([m, out]) => ({ model: m, out }))).join('\n')}\n`);
  for (const e of errors) process.stdout.write(`error: ${e}\n`);

  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  const raw = models.map((m) => ({
    folder: path.basename(m.dir),
    spec: m.spec,
    decoderBytes: m.decoderBytes,
    modelBytes: m.modelBytes,
    outputs: outputs.get(m),
  }));
  fs.writeFileSync(
    file,
    JSON.stringify(
      {
        quick,
        repeats,
        tokens,
        prompt: PROMPT,
        seconds,
        loadStart,
        loadEnd,
        cores: os.availableParallelism(),
        memoryBytes: os.totalmem(),
        bandwidth,
        cases,
        families,
        preprocess,
        batching: [...batching].map(([m, out]) => ({ folder: path.basename(m.dir), runs: out.runs })),
        raw,
        errors,
      },
      null,
      2,
    ),
  );
  log(`wrote ${path.relative(ROOT, file)} (${seconds.toFixed(0)} s in all)`);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
