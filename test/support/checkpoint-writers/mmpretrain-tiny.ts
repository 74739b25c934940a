// Tiny mmpretrain LLaVA checkpoints with the real key names, for tests.
import { TensorToWrite, seededValues } from './encode';

// Tiny widths with mmpretrain's real key names. Vision: D 16 (2 heads), FFN 32, 2 layers, patch 14.
// Text: H 24 (3 heads of 8), FFN 40, 2 layers.
export const D = 16,
  F = 32,
  PATCH = 14,
  VLAYERS = 2;
export const H = 24,
  I = 40,
  TLAYERS = 2;

/**
 * Seeded values for a tensor, depending only on its name (so every test sees the same checkpoint whatever ran
 * before). Scales keep activations O(1): matrices uniform with variance 1/fan_in, norm gains near 1, biases and
 * embeddings small. Values are multiples of 1/1024 below 2, so float16 holds them exactly.
 */
export function tensor(name: string, shape: number[]): TensorToWrite {
  const count = shape.reduce((a, b) => a * b, 1);
  const [offset, amplitude] = distribution(name, shape);
  const values = seededValues(count, nameSeed(name), amplitude);
  const data = Float32Array.from(values, (v) => Math.round((offset + v) * 1024) / 1024);
  return { name, shape, dtype: 'float16', data };
}

function distribution(name: string, shape: number[]): [number, number] {
  if (/(norm|ln\d)\.weight$/.test(name)) return [1, 0.1];
  if (name.endsWith('.bias')) return [0, 0.1];
  if (/cls_token|pos_embed|embed_tokens/.test(name)) return [0, 0.5];
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  return [0, Math.min(1, Math.sqrt(3 / fanIn))];
}

/** FNV-1a of the name. */
function nameSeed(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** A CLIP VisionTransformer state dict as mmpretrain's converters write it, under `prefix`. */
export function clipVision(prefix: string, imageSize: number, extra: TensorToWrite[] = []): TensorToWrite[] {
  const grid = imageSize / PATCH;
  const out = [
    tensor(`${prefix}cls_token`, [1, 1, D]),
    tensor(`${prefix}pos_embed`, [1, grid * grid + 1, D]),
    tensor(`${prefix}patch_embed.projection.weight`, [D, 3, PATCH, PATCH]),
    tensor(`${prefix}pre_norm.weight`, [D]),
    tensor(`${prefix}pre_norm.bias`, [D]),
  ];
  for (let l = 0; l < VLAYERS; l++) {
    const p = `${prefix}layers.${l}.`;
    out.push(
      tensor(`${p}ln1.weight`, [D]),
      tensor(`${p}ln1.bias`, [D]),
      tensor(`${p}attn.qkv.weight`, [3 * D, D]),
      tensor(`${p}attn.qkv.bias`, [3 * D]),
      tensor(`${p}attn.proj.weight`, [D, D]),
      tensor(`${p}attn.proj.bias`, [D]),
      tensor(`${p}ln2.weight`, [D]),
      tensor(`${p}ln2.bias`, [D]),
      tensor(`${p}ffn.layers.0.0.weight`, [F, D]),
      tensor(`${p}ffn.layers.0.0.bias`, [F]),
      tensor(`${p}ffn.layers.1.weight`, [D, F]),
      tensor(`${p}ffn.layers.1.bias`, [D]),
    );
  }
  out.push(tensor(`${prefix}ln1.weight`, [D]), tensor(`${prefix}ln1.bias`, [D]), ...extra);
  return out;
}

/** A LLaVA .pth as tools/model_converters/llava-delta2mmpre.py writes it. */
export function llavaLanguage(vocab: number, projectorDepth: 1 | 2): TensorToWrite[] {
  const p = 'model.lang_encoder.';
  const out = [tensor(`${p}model.embed_tokens.weight`, [vocab, H])];
  for (let l = 0; l < TLAYERS; l++) {
    const q = `${p}model.layers.${l}.`;
    out.push(
      tensor(`${q}self_attn.q_proj.weight`, [H, H]),
      tensor(`${q}self_attn.k_proj.weight`, [H, H]),
      tensor(`${q}self_attn.v_proj.weight`, [H, H]),
      tensor(`${q}self_attn.o_proj.weight`, [H, H]),
      tensor(`${q}mlp.gate_proj.weight`, [I, H]),
      tensor(`${q}mlp.up_proj.weight`, [I, H]),
      tensor(`${q}mlp.down_proj.weight`, [H, I]),
      tensor(`${q}input_layernorm.weight`, [H]),
      tensor(`${q}post_attention_layernorm.weight`, [H]),
    );
  }
  out.push(tensor(`${p}model.norm.weight`, [H]), tensor(`${p}lm_head.weight`, [vocab, H]));
  if (projectorDepth === 1) {
    out.push(tensor(`${p}model.mm_projector.weight`, [H, D]), tensor(`${p}model.mm_projector.bias`, [H]));
  } else {
    out.push(
      tensor(`${p}model.mm_projector.0.weight`, [H, D]),
      tensor(`${p}model.mm_projector.0.bias`, [H]),
      tensor(`${p}model.mm_projector.2.weight`, [H, H]),
      tensor(`${p}model.mm_projector.2.bias`, [H]),
    );
  }
  return out;
}
