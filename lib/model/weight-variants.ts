// Weight variants of a transformers.js-layout folder, chosen per graph as transformers.js's dtype option does
// ({vision_encoder: 'fp16', embed_tokens: 'fp16', decoder_model_merged: 'q4'}). One definition for the folder
// loader (a directory) and the Hub client (a repo listing): both ask `has(file)`.

/** File suffix per variant: transformers.js utils/dtypes.js DEFAULT_DTYPE_SUFFIX_MAPPING. */
export const WEIGHT_VARIANTS: Readonly<Record<string, string>> = Object.freeze({
  fp32: '',
  fp16: '_fp16',
  q8: '_quantized',
  int8: '_int8',
  uint8: '_uint8',
  q4: '_q4',
  q4f16: '_q4f16',
  q2: '_q2',
  q2f16: '_q2f16',
  q1: '_q1',
  q1f16: '_q1f16',
  bnb4: '_bnb4',
});

/** The graphs of a LLaVA model folder in the order the data flows; the projector exists in the split layout only. */
export const GRAPHS = ['vision_encoder', 'multi_modal_projector', 'embed_tokens', 'decoder_model_merged'] as const;
export type GraphName = (typeof GRAPHS)[number];

export interface VariantSpec {
  /** The variant for graphs not named: a WEIGHT_VARIANTS key or 'auto'. */
  base: string;
  /** Per-graph choices; a graph named here must have its file. */
  graphs: Partial<Record<GraphName, string>>;
}

/** What 'auto' may consult, besides the files present. */
export interface AutoHints {
  /** config.json's transformers.js_config (its dtype, string or per graph, with device_config.cpu over it). */
  transformersJs?: unknown;
  /** The variant this package's builder recorded in config.json. */
  recorded?: unknown;
}

function checkVariant(v: string, spec: string): string {
  if (v !== 'auto' && !(v in WEIGHT_VARIANTS)) {
    throw new Error(`unknown weight variant "${v}" in "${spec}"; one of: auto, ${Object.keys(WEIGHT_VARIANTS).join(', ')}`);
  }
  return v;
}

function checkGraph(graph: string, spec: string): GraphName {
  if (!(GRAPHS as readonly string[]).includes(graph)) throw new Error(`unknown graph "${graph}" in variant "${spec}"; one of: ${GRAPHS.join(', ')}`);
  return graph as GraphName;
}

/**
 * `q4`, `auto`, `vision_encoder=fp16,embed_tokens=fp16,decoder_model_merged=q4`, `fp16,decoder_model_merged=q4`
 * (a bare variant is the base for graphs not named), or a transformers.js dtype object.
 */
export function parseVariantSpec(spec: string | Record<string, string> | VariantSpec = 'auto'): VariantSpec {
  if (typeof spec === 'object' && spec !== null) {
    if ('base' in spec && typeof spec.base === 'string' && 'graphs' in spec) return spec as VariantSpec;
    const text = JSON.stringify(spec);
    const graphs: VariantSpec['graphs'] = {};
    for (const [graph, v] of Object.entries(spec as Record<string, string>)) graphs[checkGraph(graph, text)] = checkVariant(String(v), text);
    return { base: 'auto', graphs };
  }
  if (typeof spec !== 'string') throw new Error(`weight variant must be a string, got ${typeof spec}`);
  const out: VariantSpec = { base: 'auto', graphs: {} };
  for (const part of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq < 0) out.base = checkVariant(part, spec);
    else out.graphs[checkGraph(part.slice(0, eq).trim(), spec)] = checkVariant(part.slice(eq + 1).trim(), spec);
  }
  return out;
}

/** `vision_encoder=fp16,embed_tokens=fp16,decoder_model_merged=q4`, or the one variant when all graphs agree. */
export function formatVariants(chosen: Partial<Record<GraphName, string>>): string {
  const values = Object.values(chosen);
  if (values.length > 0 && values.every((v) => v === values[0])) return values[0];
  return GRAPHS.filter((g) => chosen[g])
    .map((g) => `${g}=${chosen[g]}`)
    .join(',');
}

export function onnxFileName(graph: GraphName, variant: string): string {
  return `${graph}${WEIGHT_VARIANTS[variant]}.onnx`;
}

/** The variants of `graph` present, by `has(file name under onnx/)`. */
export function variantsOf(has: (file: string) => boolean, graph: GraphName): string[] {
  return Object.keys(WEIGHT_VARIANTS).filter((v) => has(onnxFileName(graph, v)));
}

/** transformers.js_config's dtype for `graph` (session.js getSession: device_config.cpu overlays the top level). */
function transformersJsDtype(config: unknown, graph: GraphName): string | undefined {
  if (typeof config !== 'object' || config === null) return undefined;
  const c = config as { dtype?: unknown; device_config?: Record<string, { dtype?: unknown }> };
  const dtype = c.device_config?.cpu?.dtype ?? c.dtype;
  const value = typeof dtype === 'string' ? dtype : typeof dtype === 'object' && dtype !== null ? (dtype as Record<string, unknown>)[graph] : undefined;
  return typeof value === 'string' && value in WEIGHT_VARIANTS ? value : undefined;
}

/**
 * The variant of each graph present (the required ones must be present). A graph named in the spec must exist
 * in that variant. A base variant applies to every graph; the small graphs fall back to fp32 when they lack it
 * (exports often quantize only the decoder). 'auto': transformers.js_config's dtype, else the recorded variant,
 * else (small graphs) the variant 'auto' chose for the decoder, else fp32, else the only variant there is; a graph a
 * per-graph spec leaves out is chosen by 'auto' (transformers.js: a dtype object without the file means the default).
 */
export function chooseVariants(
  has: (file: string) => boolean,
  spec: VariantSpec,
  hints: AutoHints = {},
  where = 'model folder',
): Partial<Record<GraphName, string>> {
  const chosen: Partial<Record<GraphName, string>> = {};
  const missing = (graph: GraphName, variant: string, present: string[]) =>
    new Error(`${where} has no ${variant} ${graph} (onnx/${onnxFileName(graph, variant)}); available: ${present.join(', ')}`);
  const decoderVariants = variantsOf(has, 'decoder_model_merged');
  const recorded = typeof hints.recorded === 'string' && decoderVariants.includes(hints.recorded) ? hints.recorded : undefined;
  // The decoder first: on 'auto' the small graphs follow its choice when they have that variant.
  let autoDecoder: string | undefined;
  for (const graph of ['decoder_model_merged', ...GRAPHS.filter((g) => g !== 'decoder_model_merged')] as GraphName[]) {
    const present = variantsOf(has, graph);
    if (present.length === 0) continue;
    const named = spec.graphs[graph];
    if (named && named !== 'auto') {
      if (!present.includes(named)) throw missing(graph, named, present);
      chosen[graph] = named;
      continue;
    }
    const isDecoder = graph === 'decoder_model_merged';
    if (spec.base !== 'auto') {
      const variant = present.includes(spec.base) ? spec.base : !isDecoder && present.includes('fp32') ? 'fp32' : undefined;
      if (!variant) throw missing(graph, spec.base, present);
      chosen[graph] = variant;
      continue;
    }
    const configured = transformersJsDtype(hints.transformersJs, graph);
    if (configured) {
      if (!present.includes(configured)) throw missing(graph, configured, present);
      chosen[graph] = configured;
    } else if (recorded && present.includes(recorded)) chosen[graph] = recorded;
    else if (!isDecoder && autoDecoder && present.includes(autoDecoder)) chosen[graph] = autoDecoder;
    else if (present.includes('fp32')) chosen[graph] = 'fp32';
    else if (present.length === 1) chosen[graph] = present[0];
    else {
      throw new Error(
        `${where} has ${isDecoder ? 'decoder' : graph} variants ${present.join(', ')} and no fp32 one: ` +
          `choose one with --variant or the model node's Weights setting (e.g. ${graph}=${present[0]})`,
      );
    }
    if (isDecoder) autoDecoder = chosen[graph];
  }
  return Object.fromEntries(GRAPHS.filter((g) => chosen[g]).map((g) => [g, chosen[g]]));
}
