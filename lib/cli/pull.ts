// `llava pull`: a model's files from the Hugging Face Hub into the shared Hub cache; prints the folder last.
import { parseArgs } from 'util';
import { buildDir, pull } from '../hub/pull';
import { parseRepoRef } from '../hub/repo-id';
import { hubSettings } from '../hub/settings';
import { interruptSignal, pullProgress } from './hub-model';
import { UsageError } from './usage-error';

export const usage = `usage: llava pull REPO[@REVISION] [--variant SPEC] [--include GLOB]… [--cache-dir DIR]
                  [--build [--quantize int4|int8] [--out DIR]] [--verbose]

Downloads what a model needs from the Hugging Face Hub into the Hub cache (models--org--name/ under
$HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub; shared with Python tools), verifying each
file's size and sha256, and prints the model folder (the snapshot) last. An interrupted pull (Ctrl-C, a dropped
connection) resumes where it stopped.

  --variant SPEC   weight variant: auto (default: the one config.json records, else fp32), fp32, fp16, q4, q4f16,
                   q8, int8, uint8, bnb4; per graph: decoder_model_merged=q4,vision_encoder=fp16
  --include GLOB   also fetch files matching GLOB (repeatable; * within a folder, ** across folders)
  --cache-dir DIR  the Hub cache to use (default as above)
  --build          for a checkpoint repo (safetensors): convert it to an ONNX model folder after the download
  --quantize Q     with --build: int4 | int8 decoder weights
  --out DIR        with --build: where the ONNX folder goes (default beside the cache, in llava-builds/)

Environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN (else the file $HF_HOME/token) for gated or
private repos, HF_HUB_OFFLINE=1 (cache only), HF_HOME, HF_HUB_CACHE.`;

const OPTIONS = {
  variant: { type: 'string' },
  include: { type: 'string', multiple: true },
  'cache-dir': { type: 'string' },
  build: { type: 'boolean' },
  quantize: { type: 'string' },
  out: { type: 'string' },
  verbose: { type: 'boolean' },
} as const;

export async function run(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values;
  if (parsed.positionals.length !== 1) throw new UsageError('name one repo: llava pull org/name[@revision]');
  if ((v.quantize || v.out) && !v.build) throw new UsageError('--quantize and --out apply to --build');
  if (v.quantize && !['int4', 'int8'].includes(v.quantize)) throw new UsageError(`--quantize must be int4 or int8, got "${v.quantize}"`);
  let ref;
  try {
    ref = parseRepoRef(parsed.positionals[0]);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const settings = hubSettings({ cacheDir: v['cache-dir'] });
  const interrupt = interruptSignal();
  let result;
  try {
    result = await pull(ref, { variant: v.variant, include: v.include, settings, signal: interrupt.signal, onProgress: pullProgress() });
  } catch (err) {
    if (interrupt.signal.aborted) {
      process.stderr.write('\ninterrupted: the partial download is kept; run the same command to resume\n');
      return 130;
    }
    throw err;
  } finally {
    interrupt.dispose();
  }
  let folder = result.dir;
  if (v.build) {
    if (result.selection.kind !== 'checkpoint') throw new UsageError(`${ref.repo} already holds ONNX graphs: use it without --build`);
    folder = v.out ?? buildDir(settings, ref.repo, result.commit, v.quantize);
    const build = await import('./build');
    const args = ['--from', result.dir, '--out', folder, '--force', ...(v.quantize ? ['--quantize', v.quantize] : [])];
    const code = await build.run(args);
    if (code) return code;
  } else if (result.selection.kind === 'checkpoint') {
    process.stderr.write(`${ref.repo} is a checkpoint (no ONNX graphs): add --build [--quantize int4] to convert it\n`);
  }
  out.write(`${folder}\n`);
  return 0;
}
