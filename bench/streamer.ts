// `npm run bench:streamer`: the streamer's cost per token at token 50 and at token 500 of an answer, for the tiny
// LLaMA and Qwen2 tokenizers with a stop string active, next to the per-step work of decoding the whole list (what
// the streamer did before it decoded a window). Runs are interleaved so both see the same load.
//   node dist/bench/streamer.js [--reps N]
import { parseArgs } from 'util';
import { llamaTinyTokenizer, qwen2TinyTokenizer, TinyTokenizer } from '../lib/model/tiny-tokenizer';
import { StopStringMatcher, TextStreamer } from '../lib/pipeline/generation';
import { PromptTokenizer } from '../lib/pipeline/tokens';

const TEXT = 'The image shows a cat 🐱 sitting on a red chair next to a window — café, 日本語, a naïve dog. ';
const STOPS = ['USER:', '</s>'];
const AT = [50, 500];
const SPAN = 10;

type Step = (ids: number[]) => void;

function wholeList(decode: (ids: number[]) => string, stops: StopStringMatcher): Step {
  return (ids) => {
    const full = decode(ids);
    if (stops.firstMatch(full) < 0) stops.pendingLength(full.replace(/\uFFFD+$/, ''));
  };
}

function windowed(decode: (ids: number[]) => string, stops: StopStringMatcher): () => Step {
  return () => {
    const streamer = new TextStreamer(decode, stops, () => undefined);
    return (ids) => void streamer.update(ids);
  };
}

/** Microseconds per token over the SPAN steps ending at each position in AT, in one run. */
function time(newStep: () => Step, ids: readonly number[]): number[] {
  const step = newStep();
  const totals = AT.map(() => 0);
  const fed: number[] = [];
  for (const id of ids) {
    fed.push(id);
    const t = performance.now();
    step(fed);
    const us = (performance.now() - t) * 1000;
    AT.forEach((at, i) => {
      if (fed.length > at - SPAN && fed.length <= at) totals[i] += us / SPAN;
    });
  }
  return totals;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

function main(): void {
  const { values } = parseArgs({ options: { reps: { type: 'string', default: '40' } } });
  const reps = Number(values.reps);
  const out: string[] = [`| tokenizer | streamer | µs/token (median run) at ${AT.join(' | at ')} | ratio |`, '|---|---|---|---|---|'];
  for (const [name, tiny] of [
    ['LLaMA', llamaTinyTokenizer()],
    ['Qwen2', qwen2TinyTokenizer()],
  ] as [string, TinyTokenizer][]) {
    const pt = new PromptTokenizer(tiny.tokenizerJson, tiny.tokenizerConfig);
    const decode = (ids: number[]): string => pt.decode(ids, { skipSpecial: true });
    const ids = pt.tokenizer.encode(TEXT.repeat(60), { add_special_tokens: false }).ids.slice(0, Math.max(...AT));
    const stops = new StopStringMatcher(STOPS);
    const variants: [string, () => Step][] = [
      ['whole list (before)', () => wholeList(decode, stops)],
      ['window (now)', windowed(decode, stops)],
    ];
    const runs: number[][][] = variants.map(() => []);
    // One warm-up run each, then reps runs interleaved; the median run per position is reported.
    for (let r = -1; r < reps; r++) {
      for (let v = 0; v < variants.length; v++) {
        const i = (v + r + 1) % variants.length;
        const us = time(variants[i][1], ids);
        if (r >= 0) runs[i].push(us);
      }
    }
    variants.forEach(([label], i) => {
      const us = AT.map((_, a) => median(runs[i].map((run) => run[a])));
      out.push(`| ${name} | ${label} | ${us.map((u) => u.toFixed(1)).join(' | ')} | ${(us[1] / us[0]).toFixed(2)} |`);
    });
  }
  console.log(out.join('\n'));
}

main();
