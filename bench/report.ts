// Medians per engine, the ratios the targets are stated in, and the printed (markdown) tables.
import type { Bandwidth } from './bandwidth';
import type { CaseOutput, RunFigures } from './cases/types';
import { BuiltModel, variantLabel } from './models';
import { PIPELINE_VISION } from './cases/vision-sweep';
import { BATCH_SIZES } from './cases/batching';
import { median, medians, ratio } from './stats';

export interface EngineSummary {
  figures: RunFigures;
  peakRssBytes: number;
}

export interface CaseSummary {
  family: string;
  variant: string;
  decoderBytes: number;
  modelBytes: number;
  /** Bandwidth floor: decoder bytes read once per token at the measured bandwidth. */
  floorTokS: number;
  /** By engine label (bench/run.ts ENGINES). */
  engines: Record<string, EngineSummary>;
  ratios: { oursVsTransformersJs: number; oursVsBare: number; oursVsFloor: number };
}

export interface FamilySummary {
  name: string;
  /** Vision encoder ms per onnxruntime session configuration. */
  visionSweep: Record<string, number>;
}

export function summarize(model: BuiltModel, outputs: Record<string, CaseOutput[]>, bandwidth: number): CaseSummary {
  const engines: CaseSummary['engines'] = {};
  for (const [label, outs] of Object.entries(outputs)) {
    engines[label] = {
      figures: medians(outs.flatMap((o) => o.runs)),
      peakRssBytes: median(outs.map((o) => o.peakRssBytes)),
    };
  }
  const tok = (label: string) => engines[label]?.figures.decode_tok_s;
  const floorTokS = bandwidth / model.decoderBytes;
  return {
    family: model.spec.name,
    variant: variantLabel(model.spec),
    decoderBytes: model.decoderBytes,
    modelBytes: model.modelBytes,
    floorTokS,
    engines,
    ratios: {
      oursVsTransformersJs: ratio(tok('ours'), tok('transformers.js')),
      oursVsBare: ratio(tok('ours'), tok('bare-ort')),
      oursVsFloor: ratio(tok('ours'), floorTokS),
    },
  };
}

const f = (v: number | undefined, digits = 0) => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));
const gb = (bytes: number) => (bytes / 1e9).toFixed(2);

export interface RunInfo {
  bandwidth: Bandwidth;
  loadStart: number[];
  loadEnd: number[];
  seconds: number;
  repeats: number;
  tokens: number;
}

/** A titled markdown table: the first two columns are names, the rest figures (right-aligned). */
function pushTable(out: string[], title: string, header: string[], rows: string[][]): void {
  if (rows.length === 0) return;
  out.push('', title, '', `| ${header.join(' | ')} |`, `|${header.map((_, i) => (i < 2 ? '---' : '--:')).join('|')}|`);
  for (const r of rows) out.push(`| ${r.join(' | ')} |`);
}

export function printReport(cases: CaseSummary[], families: FamilySummary[], info: RunInfo): void {
  const out: string[] = [];
  out.push(
    `| model | decoder | engine | preprocess ms | vision ms | projector ms | prefill ms | TTFT ms | decode tok/s | peak RSS GB (× model) | event loop max ms |`,
  );
  out.push('|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const c of cases) {
    for (const [kind, e] of Object.entries(c.engines)) {
      const x = e.figures;
      const rss = `${gb(e.peakRssBytes)} (${f(e.peakRssBytes / c.modelBytes, 2)})`;
      out.push(
        `| ${c.family} | ${c.variant} | ${kind} | ${f(x.preprocess_ms)} | ${f(x.vision_ms)} | ${f(x.projector_ms)} | ${f(x.prefill_ms)} | ${f(x.ttft_ms)} | ${f(x.decode_tok_s, 2)} | ${rss} | ${f(x.event_loop_max_ms, 1)} |`,
      );
    }
  }
  const llamaRows: string[][] = [];
  const firstRows: string[][] = [];
  for (const c of cases) {
    const ours = c.engines.ours?.figures;
    const llama = c.engines['llama.cpp']?.figures;
    if (ours && llama) {
      const prefill = (x: RunFigures) => (ours.prompt_tokens * 1000) / x.prefill_ms;
      const busyOurs = c.engines['ours busy']?.figures.decode_tok_s;
      const busyLlama = c.engines['llama.cpp busy']?.figures.decode_tok_s;
      llamaRows.push([
        c.family,
        c.variant,
        `${f(prefill(ours))} · ${f(prefill(llama))}`,
        `${f(ours.decode_tok_s, 1)} · ${f(llama.decode_tok_s, 1)}`,
        `${f(ratio(prefill(ours), prefill(llama)), 2)} · ${f(ratio(ours.decode_tok_s, llama.decode_tok_s), 2)}`,
        `${f(busyOurs, 1)} · ${f(busyLlama, 1)}`,
        f(ratio(busyOurs, busyLlama), 2),
      ]);
    }
    if (ours) {
      firstRows.push([
        c.family,
        c.variant,
        `${f(ours.load_ms)} (${f(ours.warmup_ms)})`,
        `${f(ours.first_ttft_ms)} · ${f(ours.ttft_ms)}`,
        `${f(ours.first_prefill_ms)} · ${f(ours.prefill_ms)}`,
        `${f(ours.first_decode_tok_s, 2)} · ${f(ours.decode_tok_s, 2)}`,
      ]);
    }
  }
  pushTable(
    out,
    'llama.cpp (node-llama-cpp) on a GGUF of the same weights (F32 for fp32, Q4_0 for every int4 matrix), same prompt length; "busy": beside a busy-loop process:',
    [
      'model',
      'weights',
      'prefill tok/s ours · llama.cpp',
      'decode tok/s ours · llama.cpp',
      'ours ÷ llama.cpp prefill · decode',
      'busy decode tok/s ours · llama.cpp',
      'busy ours ÷ llama.cpp',
    ],
    llamaRows,
  );
  pushTable(
    out,
    'First frame after the load (the load includes its warm-up) against the frames after it, ours:',
    ['model', 'decoder', 'load ms (warm-up)', 'TTFT ms first · next', 'prefill ms first · next', 'decode tok/s first · next'],
    firstRows,
  );
  out.push('');
  out.push('| model | decoder | decoder GB | ours / transformers.js | ours / bare loop | floor tok/s | ours / floor |');
  out.push('|---|---|--:|--:|--:|--:|--:|');
  for (const c of cases) {
    const r = c.ratios;
    out.push(
      `| ${c.family} | ${c.variant} | ${gb(c.decoderBytes)} | ${f(r.oursVsTransformersJs, 2)} | ${f(r.oursVsBare, 2)} | ${f(c.floorTokS, 2)} | ${f(r.oursVsFloor, 2)} |`,
    );
  }
  out.push('');
  for (const fam of families) {
    const ours = fam.visionSweep[PIPELINE_VISION];
    const sweep = Object.entries(fam.visionSweep)
      .filter(([n]) => n !== PIPELINE_VISION)
      .sort((a, b) => a[1] - b[1]);
    if (sweep.length) {
      out.push(
        `${fam.name} vision encoder: pipeline ${f(ours)} ms; best onnxruntime configuration "${sweep[0][0]}" ${f(sweep[0][1])} ms → ${f(ratio(ours, sweep[0][1]), 2)}×`,
      );
      out.push(`  sweep: ${sweep.map(([n, ms]) => `${n} ${f(ms)}`).join('; ')}`);
    }
    const int4 = cases.find((c) => c.family === fam.name && c.variant === 'optimized int4')?.engines.ours?.figures.decode_tok_s;
    const tjsFp32 = cases.find((c) => c.family === fam.name && c.variant === 'portable fp32')?.engines['transformers.js']?.figures.decode_tok_s;
    if (int4 !== undefined && tjsFp32 !== undefined) {
      out.push(`${fam.name}: ours int4 ${f(int4, 2)} tok/s vs transformers.js fp32 (portable) ${f(tjsFp32, 2)} tok/s → ${f(ratio(int4, tjsFp32), 2)}×`);
    }
  }
  const bw = info.bandwidth;
  out.push(
    `memory read bandwidth ${f(bw.bytesPerSecond / 1e9, 1)} GB/s (threads ${f(bw.threadsSum / 1e9, 1)}, onnxruntime GEMV ${f(bw.ortGemv / 1e9, 1)}); ` +
      `${info.repeats} repeat(s) (medians), ${info.tokens} tokens; load average ${info.loadStart.map((l) => l.toFixed(1)).join('/')} → ` +
      `${info.loadEnd.map((l) => l.toFixed(1)).join('/')}; ${f(info.seconds)} s`,
  );
  process.stdout.write(`${out.join('\n')}\n`);
}

/** Continuous batching: total generated tok/s with c requests at once and the same c one after another. */
export function batchingLines(results: Array<{ model: BuiltModel; out: CaseOutput }>): string[] {
  const out: string[] = [];
  const rows: string[][] = [];
  for (const { model, out: o } of results) {
    const x = medians(o.runs);
    for (const c of BATCH_SIZES) {
      const cell = (kind: string, per: string) => {
        const [batched, serial] = [x[`${kind}_${c}_batched_${per}`], x[`${kind}_${c}_serial_${per}`]];
        return `${f(batched, 1)} · ${f(serial, 1)} (${f(ratio(batched, serial), 2)}×)`;
      };
      rows.push([
        model.spec.name,
        variantLabel(model.spec),
        String(c),
        cell('camera', 'tok_s'),
        cell('text', 'tok_s'),
        cell('camera', 'tok_cpu_s'),
        cell('text', 'tok_cpu_s'),
      ]);
    }
  }
  pushTable(
    out,
    'Continuous batching (ours): generated tokens per second of wall time and of CPU time, requests at once · one after another (ratio); camera: image prompt, text: a short prompt (decode-bound):',
    ['model', 'decoder', 'requests', 'camera tok/s', 'text tok/s', 'camera tok per CPU-s', 'text tok per CPU-s'],
    rows,
  );
  return out;
}
