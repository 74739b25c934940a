// A small GGUF (v3) writer for the benchmark: the text decoder of a LLaVA config with the same weights our ONNX
// folders are built from, as llama.cpp's `llama` / `qwen2` architectures name them, in F32 or Q4_0 (every matrix,
// like `llama-quantize --pure`; norms and biases stay F32). llama.cpp then runs the same model as ours.
// Format: github.com/ggml-org/ggml docs/gguf.md; tensor names and keys as llama.cpp's convert_hf_to_gguf.py writes them.
import * as fs from 'fs';
import type { LlavaConfig } from '../lib/model/config';
import { headDim } from '../lib/model/config';
import { hasQkvBias } from '../lib/onnx/text/llama';
import { LM_HEAD, TEXT_PREFIX } from '../lib/onnx/weight-names';
import type { WeightSource } from '../lib/onnx/weights';
import { floatToHalf } from '../lib/util/float16';

export type GgufType = 'F32' | 'Q4_0';

const GGML_TYPE = { F32: 0, Q4_0: 2 } as const;
/** general.file_type: LLAMA_FTYPE_ALL_F32, LLAMA_FTYPE_MOSTLY_Q4_0. */
const FILE_TYPE = { F32: 0, Q4_0: 2 } as const;
const ALIGNMENT = 32;
const QK4_0 = 32;
/** Bytes of one Q4_0 block: an fp16 scale and 32 4-bit values. */
const Q4_0_BLOCK_BYTES = 2 + QK4_0 / 2;

enum ValueType {
  INT32 = 5,
  UINT32 = 4,
  FLOAT32 = 6,
  STRING = 8,
  ARRAY = 9,
}
type Scalar = { type: ValueType.UINT32 | ValueType.INT32 | ValueType.FLOAT32; value: number } | { type: ValueType.STRING; value: string };
type Value = Scalar | { type: ValueType.ARRAY; items: ValueType.INT32 | ValueType.FLOAT32 | ValueType.STRING; values: Array<number | string> };

class ByteWriter {
  private chunks: Buffer[] = [];
  length = 0;

  push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }

  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }

  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }

  f32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }

  string(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    this.push(bytes);
  }

  value(v: Value): void {
    this.u32(v.type);
    if (v.type === ValueType.ARRAY) {
      this.u32(v.items);
      this.u64(v.values.length);
      for (const x of v.values) this.item(v.items, x);
    } else this.item(v.type, v.value);
  }

  private item(type: ValueType, x: number | string): void {
    if (type === ValueType.STRING) this.string(x as string);
    else if (type === ValueType.UINT32) this.u32(x as number);
    else if (type === ValueType.INT32) this.u32((x as number) >>> 0);
    else this.f32(x as number);
  }

  buffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/**
 * Q4_0 as ggml's quantize_row_q4_0_ref: per block of 32, d = (the value of largest magnitude) / −8, q = round(x/d)+8
 * clamped to 15; the first 16 values go to the low nibbles, the last 16 to the high ones.
 */
export function quantizeQ4_0(x: Float32Array): Buffer {
  if (x.length % QK4_0 !== 0) throw new Error(`Q4_0 needs a multiple of ${QK4_0} values per row, got ${x.length}`);
  const blocks = x.length / QK4_0;
  const out = Buffer.alloc(blocks * Q4_0_BLOCK_BYTES);
  for (let b = 0; b < blocks; b++) {
    const base = b * QK4_0;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK4_0; j++) {
      const v = x[base + j];
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = Math.fround(max / -8);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const o = b * Q4_0_BLOCK_BYTES;
    out.writeUInt16LE(floatToHalf(d), o);
    for (let j = 0; j < QK4_0 / 2; j++) {
      const lo = Math.min(15, Math.trunc(Math.fround(x[base + j] * id) + 8.5));
      const hi = Math.min(15, Math.trunc(Math.fround(x[base + QK4_0 / 2 + j] * id) + 8.5));
      out[o + 2 + j] = lo | (hi << 4);
    }
  }
  return out;
}

/**
 * LLaMA GGUFs rotate interleaved pairs (ggml's "normal" RoPE) where HF rotates halves: convert_hf_to_gguf permutes
 * the rows of q_proj/k_proj within each head from [2, hd/2] to [hd/2, 2]. Qwen2 uses NEOX RoPE (halves): no change.
 */
function permuteRope(w: Float32Array, heads: number, cols: number): Float32Array {
  const rows = w.length / cols;
  const hd = rows / heads;
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < hd / 2; i++) {
      for (let j = 0; j < 2; j++) {
        const from = h * hd + j * (hd / 2) + i;
        const to = h * hd + i * 2 + j;
        out.set(w.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

interface TensorPlan {
  name: string;
  /** ggml order: ne[0] is the row length (HF [out, in] → [in, out]). */
  ne: number[];
  type: GgufType;
  bytes: number;
  data: () => Buffer;
}

function tensorBytes(ne: number[], type: GgufType): number {
  const n = ne.reduce((a, b) => a * b, 1);
  return type === 'F32' ? 4 * n : (n / QK4_0) * Q4_0_BLOCK_BYTES;
}

/**
 * The benchmark feeds token ids, but node-llama-cpp tokenizes while it loads a model, so the file needs some
 * vocabulary: a byte-fallback SentencePiece one (<unk>, <s>, </s>, the 256 bytes, then placeholders).
 */
function placeholderVocabulary(size: number): Array<[string, Value]> {
  const NORMAL = 1,
    UNKNOWN = 2,
    CONTROL = 3,
    BYTE = 6;
  const tokens = ['<unk>', '<s>', '</s>', ...Array.from({ length: 256 }, (_, i) => `<0x${i.toString(16).toUpperCase().padStart(2, '0')}>`)];
  if (size < tokens.length) throw new Error(`vocab_size ${size} is smaller than the ${tokens.length} tokens of the placeholder vocabulary`);
  const types = [UNKNOWN, CONTROL, CONTROL, ...new Array<number>(256).fill(BYTE)];
  for (let i = tokens.length; i < size; i++) {
    tokens.push(`tok${i}`);
    types.push(NORMAL);
  }
  return [
    ['tokenizer.ggml.model', { type: ValueType.STRING, value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: ValueType.ARRAY, items: ValueType.STRING, values: tokens }],
    ['tokenizer.ggml.scores', { type: ValueType.ARRAY, items: ValueType.FLOAT32, values: new Array<number>(size).fill(0) }],
    ['tokenizer.ggml.token_type', { type: ValueType.ARRAY, items: ValueType.INT32, values: types }],
    ['tokenizer.ggml.unknown_token_id', { type: ValueType.UINT32, value: 0 }],
    ['tokenizer.ggml.bos_token_id', { type: ValueType.UINT32, value: 1 }],
    ['tokenizer.ggml.eos_token_id', { type: ValueType.UINT32, value: 2 }],
  ];
}

const align = (n: number) => Math.ceil(n / ALIGNMENT) * ALIGNMENT;

export interface GgufModel {
  arch: 'llama' | 'qwen2';
  bytes: number;
}

/** Writes the text decoder of `config` with `weights` (names as lib/onnx/weight-layout) to `file`. */
export function writeGguf(file: string, config: LlavaConfig, weights: WeightSource, type: GgufType): GgufModel {
  const t = config.text_config;
  const arch = t.model_type === 'qwen2' ? 'qwen2' : t.model_type === 'llama' ? 'llama' : null;
  if (!arch) throw new Error(`no GGUF mapping for text model_type "${t.model_type}" (llama or qwen2)`);
  const hd = headDim(t);
  const plans: TensorPlan[] = [];
  const add = (name: string, hfName: string, opts: { heads?: number } = {}) => {
    const w = weights.get(hfName);
    if (!w) throw new Error(`weights are missing ${hfName}`);
    const ne = [...w.shape].reverse();
    const tensorType: GgufType = ne.length === 2 ? type : 'F32';
    plans.push({
      name,
      ne,
      type: tensorType,
      bytes: tensorBytes(ne, tensorType),
      data: () => {
        let x = w.read();
        if (!(x instanceof Float32Array)) throw new Error(`${hfName}: the GGUF writer takes float32 weights`);
        if (opts.heads && arch === 'llama') x = permuteRope(x, opts.heads, w.shape[1]);
        return tensorType === 'F32' ? Buffer.from(x.buffer, x.byteOffset, x.byteLength) : quantizeQ4_0(x);
      },
    });
  };
  const bias = hasQkvBias(config);
  add('token_embd.weight', `${TEXT_PREFIX}.embed_tokens.weight`);
  for (let i = 0; i < t.num_hidden_layers; i++) {
    const p = `${TEXT_PREFIX}.layers.${i}`;
    const b = `blk.${i}`;
    add(`${b}.attn_norm.weight`, `${p}.input_layernorm.weight`);
    add(`${b}.attn_q.weight`, `${p}.self_attn.q_proj.weight`, { heads: t.num_attention_heads });
    add(`${b}.attn_k.weight`, `${p}.self_attn.k_proj.weight`, { heads: t.num_key_value_heads });
    add(`${b}.attn_v.weight`, `${p}.self_attn.v_proj.weight`);
    if (bias) {
      // Qwen2 only (NEOX RoPE), so no permutation of the q/k biases is needed.
      if (arch === 'llama') throw new Error('LLaMA with attention_bias is not mapped to GGUF here');
      for (const n of ['q', 'k', 'v']) add(`${b}.attn_${n}.bias`, `${p}.self_attn.${n}_proj.bias`);
    }
    add(`${b}.attn_output.weight`, `${p}.self_attn.o_proj.weight`);
    add(`${b}.ffn_norm.weight`, `${p}.post_attention_layernorm.weight`);
    add(`${b}.ffn_gate.weight`, `${p}.mlp.gate_proj.weight`);
    add(`${b}.ffn_up.weight`, `${p}.mlp.up_proj.weight`);
    add(`${b}.ffn_down.weight`, `${p}.mlp.down_proj.weight`);
  }
  add('output_norm.weight', `${TEXT_PREFIX}.norm.weight`);
  if (!t.tie_word_embeddings) add('output.weight', LM_HEAD);

  const u32 = (value: number): Value => ({ type: ValueType.UINT32, value });
  const f32 = (value: number): Value => ({ type: ValueType.FLOAT32, value });
  const str = (value: string): Value => ({ type: ValueType.STRING, value });
  const kv: Array<[string, Value]> = [
    ['general.architecture', str(arch)],
    ['general.name', str(`bench ${arch} ${type}`)],
    ['general.file_type', u32(FILE_TYPE[type])],
    [`${arch}.context_length`, u32(t.max_position_embeddings)],
    [`${arch}.embedding_length`, u32(t.hidden_size)],
    [`${arch}.block_count`, u32(t.num_hidden_layers)],
    [`${arch}.feed_forward_length`, u32(t.intermediate_size)],
    [`${arch}.attention.head_count`, u32(t.num_attention_heads)],
    [`${arch}.attention.head_count_kv`, u32(t.num_key_value_heads)],
    [`${arch}.attention.key_length`, u32(hd)],
    [`${arch}.attention.value_length`, u32(hd)],
    [`${arch}.rope.freq_base`, f32(t.rope_theta)],
    [`${arch}.attention.layer_norm_rms_epsilon`, f32(t.rms_norm_eps)],
    [`${arch}.vocab_size`, u32(t.vocab_size)],
    ...placeholderVocabulary(t.vocab_size),
  ];

  const head = new ByteWriter();
  head.push(Buffer.from('GGUF', 'latin1'));
  head.u32(3);
  head.u64(plans.length);
  head.u64(kv.length);
  for (const [key, value] of kv) {
    head.string(key);
    head.value(value);
  }
  let offset = 0;
  for (const p of plans) {
    head.string(p.name);
    head.u32(p.ne.length);
    for (const d of p.ne) head.u64(d);
    head.u32(GGML_TYPE[p.type]);
    head.u64(offset);
    offset = align(offset + p.bytes);
  }
  const fd = fs.openSync(file, 'w');
  try {
    let pos = 0;
    const write = (b: Buffer) => {
      fs.writeSync(fd, b);
      pos += b.length;
    };
    const pad = () => write(Buffer.alloc(align(pos) - pos));
    write(head.buffer());
    pad();
    for (const p of plans) {
      const data = p.data();
      if (data.length !== p.bytes) throw new Error(`${p.name}: ${data.length} bytes written, ${p.bytes} planned`);
      write(data);
      pad();
    }
    return { arch, bytes: pos };
  } finally {
    fs.closeSync(fd);
  }
}
