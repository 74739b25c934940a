// Hub models offered by name in the editor and the README. Sizes are the Hub's file sizes (research notes,
// llava-family.md §2.1, §2.4, §2.5); RAM is about the files loaded (onnxruntime maps large weights; the benchmark's
// peak RSS is 1.0–1.3 × the model); the speed is what `npm run bench` measured on a random-weight build of the same
// widths on 2 vCPUs, not on these weights.

export interface KnownModel {
  repo: string;
  /** Weight variant spec passed to pull and to the loader. */
  variant: string;
  /** What it is, in a few words. */
  label: string;
  downloadSize: string;
  ram: string;
  speed: string;
}

export const KNOWN_MODELS: KnownModel[] = [
  {
    repo: 'llava-hf/llava-onevision-qwen2-0.5b-ov-hf',
    variant: 'decoder_model_merged=q4,embed_tokens=fp16,vision_encoder=fp16',
    label: 'LLaVA-OneVision 0.5B (SigLIP + Qwen2-0.5B)',
    downloadSize: '1.40 GB',
    ram: '≈1.6 GB',
    speed: '≈28 tok/s decode, 4 s to first token (random-weight 0.5b int4 build, 2 vCPU)',
  },
  {
    repo: 'llava-hf/llava-interleave-qwen-0.5b-hf',
    variant: 'decoder_model_merged=q4,embed_tokens=fp16,vision_encoder=fp16',
    label: 'LLaVA-Interleave 0.5B (SigLIP + Qwen1.5-0.5B)',
    downloadSize: '≈1.4 GB',
    ram: '≈1.6 GB',
    speed: '≈28 tok/s decode, 4 s to first token (random-weight 0.5b int4 build, 2 vCPU)',
  },
  {
    repo: 'Xenova/tiny-random-LlavaForConditionalGeneration',
    variant: 'fp32',
    label: 'tiny random LLaVA (tests the flow; its text is noise)',
    downloadSize: '≈5 MB',
    ram: '<100 MB',
    speed: '>1000 tok/s (tiny build, 2 vCPU)',
  },
];
