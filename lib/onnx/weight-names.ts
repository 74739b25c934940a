// The llava-hf weight-name prefixes every architecture module names its weights under, and the shape-list type.
export const VISION_PREFIX = 'vision_tower.vision_model';
export const PROJECTOR_PREFIX = 'multi_modal_projector';
export const TEXT_PREFIX = 'language_model.model';
export const LM_HEAD = 'language_model.lm_head.weight';

export type WeightShapes = Array<[name: string, shape: number[]]>;

/** A PyTorch Linear's weight [out, in] (and bias [out]). */
export function linearShapes(out: WeightShapes, prefix: string, inF: number, outF: number, bias: boolean): void {
  out.push([`${prefix}.weight`, [outF, inF]]);
  if (bias) out.push([`${prefix}.bias`, [outF]]);
}
