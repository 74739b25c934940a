// Float64 reference forward passes for LLaVA from a WeightSource + HF config, for whole-pipeline tests.
export { RefTensor, maxAbsDiff, gelu, geluTanh, quickGelu, silu, erf } from './math';
export { referenceVision, referenceProjector } from './vision';
export { referenceDecoder, referenceEmbed, emptyRefCache, RefKvCache, RefDecoderInput, RefDecoderOutput } from './decoder';
