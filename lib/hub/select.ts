// Which files of a repo a model needs: the configs, tokenizer and processor files, and for each ONNX graph the
// weight variant asked for (with fp32 as the fallback for the small graphs, as the folder loader does) plus that
// file's external data. A checkpoint repo (safetensors, no onnx/) gets its weights instead, for `--build`.
import { AutoHints, chooseVariants, GRAPHS, onnxFileName, VariantSpec } from '../model/weight-variants';

export { parseVariantSpec, VariantSpec } from '../model/weight-variants';

const REQUIRED_GRAPHS = new Set(['vision_encoder', 'embed_tokens', 'decoder_model_merged']);

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

export interface Selection {
  /** Files to have, in repo paths. */
  files: string[];
  /** The variant per graph chosen (empty for a checkpoint repo). */
  graphs: Record<string, string>;
  kind: 'onnx' | 'checkpoint';
}

/**
 * The files a model needs from a repo listing. `hints` come from the repo's config.json (its transformers.js_config
 * and the variant this package's builder records), which 'auto' consults as the folder loader does.
 */
export function selectFiles(names: string[], spec: VariantSpec, include: string[] = [], hints: AutoHints = {}): Selection {
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
  const has = (file: string) => all.has(`onnx/${file}`);
  Object.assign(graphs, chooseVariants(has, spec, hints, 'the repo'));
  for (const graph of GRAPHS) {
    const variant = graphs[graph];
    if (!variant) {
      if (REQUIRED_GRAPHS.has(graph))
        throw new Error(`the repo has no onnx/${graph}*.onnx: not a LLaVA ONNX repo (a checkpoint repo is converted with --build)`);
      continue;
    }
    const file = `onnx/${onnxFileName(graph, variant)}`;
    files.add(file);
    // External data: <file>_data, <file>_data_1…, <file>.data.
    for (const n of names) if (n.startsWith(`${file}_data`) || n.startsWith(`${file}.data`)) files.add(n);
  }
  return { files: [...files].sort(), graphs, kind: 'onnx' };
}
