// Which files of a repo a model needs: the configs, tokenizer and processor files, and for each ONNX graph the
// weight variant asked for (with fp32 as the fallback for the small graphs, as the folder loader does) plus that
// file's external data. A checkpoint repo (safetensors, no onnx/) gets its weights instead, for `--build`.
import { WEIGHT_VARIANTS } from '../model/folder';

/** The graphs of a LLaVA model folder, in the order the data flows; the projector exists in the split layout only. */
const GRAPHS = ['vision_encoder', 'multi_modal_projector', 'embed_tokens', 'decoder_model_merged'] as const;
const REQUIRED_GRAPHS = new Set(['vision_encoder', 'embed_tokens', 'decoder_model_merged']);

export interface VariantSpec {
  /** The variant for graphs not named: a WEIGHT_VARIANTS key or 'auto'. */
  base: string;
  /** Per-graph choices (`decoder_model_merged=q4,vision_encoder=fp16`). */
  graphs: Record<string, string>;
}

/** `q4`, `auto`, `decoder_model_merged=q4,vision_encoder=fp16` or `fp16,decoder_model_merged=q4`. */
export function parseVariantSpec(spec = 'auto'): VariantSpec {
  const out: VariantSpec = { base: 'auto', graphs: {} };
  const check = (v: string) => {
    if (v !== 'auto' && !(v in WEIGHT_VARIANTS)) throw new Error(`unknown weight variant "${v}"; one of: auto, ${Object.keys(WEIGHT_VARIANTS).join(', ')}`);
    return v;
  };
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq < 0) {
      out.base = check(part);
      continue;
    }
    const graph = part.slice(0, eq).trim();
    if (!(GRAPHS as readonly string[]).includes(graph)) throw new Error(`unknown graph "${graph}" in variant "${spec}"; one of: ${GRAPHS.join(', ')}`);
    out.graphs[graph] = check(part.slice(eq + 1).trim());
  }
  return out;
}

/** A shell-style glob over repo paths: `*` and `?` stay within a folder, `**` crosses folders. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Small files every model folder may need: configs, tokenizer, processor and chat templates. */
function isSupportFile(name: string): boolean {
  return !name.includes('/') && (/\.(json|jinja|txt)$/.test(name) || name === 'tokenizer.model');
}

function onnxFile(graph: string, variant: string): string {
  return `onnx/${graph}${WEIGHT_VARIANTS[variant]}.onnx`;
}

function variantsOf(names: Set<string>, graph: string): string[] {
  return Object.keys(WEIGHT_VARIANTS).filter((v) => names.has(onnxFile(graph, v)));
}

export interface Selection {
  /** Files to have, in repo paths. */
  files: string[];
  /** The variant per graph chosen (empty for a checkpoint repo). */
  graphs: Record<string, string>;
  kind: 'onnx' | 'checkpoint';
}

/**
 * The files a model needs from a repo listing. `recordedVariant` is the variant the repo's config.json records
 * (folders this package builds), which 'auto' prefers, as the folder loader does.
 */
export function selectFiles(names: string[], spec: VariantSpec, include: string[] = [], recordedVariant?: string): Selection {
  const all = new Set(names);
  const files = new Set(names.filter(isSupportFile));
  const patterns = include.map(globToRegExp);
  for (const n of names) if (patterns.some((p) => p.test(n))) files.add(n);
  const graphs: Record<string, string> = {};
  const hasOnnx = names.some((n) => n.startsWith('onnx/') && n.endsWith('.onnx'));
  if (!hasOnnx) {
    const safetensors = names.filter((n) => !n.includes('/') && n.endsWith('.safetensors'));
    const weights = safetensors.length ? safetensors : names.filter((n) => !n.includes('/') && /^pytorch_model.*\.bin$/.test(n));
    if (!weights.length) throw new Error('the repo has neither onnx/*.onnx graphs nor safetensors/PyTorch weights: not a LLaVA model repo');
    weights.forEach((n) => files.add(n));
    return { files: [...files].sort(), graphs, kind: 'checkpoint' };
  }
  const decoderVariants = variantsOf(all, 'decoder_model_merged');
  let base = spec.base;
  if (base === 'auto') {
    if (recordedVariant && recordedVariant in WEIGHT_VARIANTS && decoderVariants.includes(recordedVariant)) base = recordedVariant;
    else if (decoderVariants.includes('fp32') || decoderVariants.length === 0) base = 'fp32';
    else if (decoderVariants.length === 1) base = decoderVariants[0];
    else throw new Error(`the repo has decoder variants ${decoderVariants.join(', ')} and no fp32 one: choose one with --variant`);
  }
  for (const graph of GRAPHS) {
    const present = variantsOf(all, graph);
    if (!present.length) {
      if (REQUIRED_GRAPHS.has(graph)) throw new Error(`the repo has no onnx/${graph}*.onnx: not a LLaVA ONNX repo (a checkpoint repo is converted with --build)`);
      continue;
    }
    const wanted = spec.graphs[graph] && spec.graphs[graph] !== 'auto' ? spec.graphs[graph] : base;
    // The small graphs fall back to fp32 (exports often quantize only the decoder); the decoder must exist as asked.
    const variant = present.includes(wanted) ? wanted : graph !== 'decoder_model_merged' && present.includes('fp32') ? 'fp32' : undefined;
    if (!variant) throw new Error(`the repo has no ${wanted} ${graph} (${onnxFile(graph, wanted)}); available: ${present.join(', ')}`);
    graphs[graph] = variant;
    const file = onnxFile(graph, variant);
    files.add(file);
    // External data: <file>_data, <file>_data_1…, <file>.data.
    for (const n of names) if (n.startsWith(`${file}_data`) || n.startsWith(`${file}.data`)) files.add(n);
  }
  return { files: [...files].sort(), graphs, kind: 'onnx' };
}
