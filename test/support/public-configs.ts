// The config files of public LLaVA-family repos on the Hugging Face Hub, field for field as far as the sources
// below show them (the Hub is unreachable from here; the values are those the research notes llava-family.md §2 and
// models.md §3 read from the cited pages). A field the sources do not show is left out rather than guessed, which
// only makes the loader lean harder on the class defaults. Fixtures shrink
// the widths with `tiny()`; every other field stays as published, so the loader meets what it will meet on the Hub.

/** CLIPImageProcessor's preprocessor_config.json as llava-hf writes it (shortest edge, centre crop, CLIP mean/std). */
function clipImageProcessor(size: number) {
  return {
    crop_size: { height: size, width: size },
    do_center_crop: true,
    do_convert_rgb: true,
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: [0.48145466, 0.4578275, 0.40821073],
    image_processor_type: 'CLIPImageProcessor',
    image_std: [0.26862954, 0.26130258, 0.27577711],
    processor_class: 'LlavaProcessor',
    resample: 3,
    rescale_factor: 0.00392156862745098,
    size: { shortest_edge: size },
  };
}

/** Xenova/tiny-random-LlavaForConditionalGeneration, the transformers.js test model.
 * https://huggingface.co/Xenova/tiny-random-LlavaForConditionalGeneration/blob/main/config.json (copies:
 * https://huggingface.co/trl-internal-testing/tiny-random-LlavaForConditionalGeneration/blob/main/config.json,
 * https://huggingface.co/katuni4ka/tiny-random-llava/blob/refs%2Fpr%2F1/config.json). Its text_config has no
 * max_position_embeddings, rms_norm_eps or rope_theta: LlamaConfig's defaults apply. Already tiny: 30 px, patch 2,
 * 15×15 = 225 image tokens. */
export const TINY_RANDOM_LLAVA = {
  config: {
    architectures: ['LlavaForConditionalGeneration'],
    ignore_index: -100,
    image_token_index: 32000,
    model_type: 'llava',
    projector_hidden_act: 'gelu',
    text_config: {
      bos_token_id: 0,
      eos_token_id: 1,
      hidden_size: 16,
      intermediate_size: 64,
      model_type: 'llama',
      num_attention_heads: 4,
      num_hidden_layers: 2,
      num_key_value_heads: 4,
      pad_token_id: 2,
      vocab_size: 32002,
    },
    vision_config: {
      hidden_size: 32,
      image_size: 30,
      intermediate_size: 37,
      model_type: 'clip_vision_model',
      num_attention_heads: 4,
      num_hidden_layers: 2,
      patch_size: 2,
    },
    vision_feature_layer: -2,
    vision_feature_select_strategy: 'default',
  },
  /** https://huggingface.co/Xenova/tiny-random-LlavaForConditionalGeneration/blob/main/preprocessor_config.json
   * (CLIPImageProcessor as llava-hf writes it, at the tower's 30 px). */
  preprocessor: clipImageProcessor(30),
  /** https://huggingface.co/Xenova/tiny-random-LlavaForConditionalGeneration/blob/main/processor_config.json: the
   * count transformers.js expands <image> to is 15·15 + 0 = 225 (llava-family.md §2.1). */
  processor: {
    image_token: '<image>',
    num_additional_image_tokens: 0,
    patch_size: 2,
    processor_class: 'LlavaProcessor',
    vision_feature_select_strategy: 'default',
  },
};

/** The vision_config llava-hf's CLIP-L/336 LLaVAs save (models.md §3). */
const LLAVA_HF_CLIP_L_336 = {
  hidden_size: 1024,
  image_size: 336,
  intermediate_size: 4096,
  model_type: 'clip_vision_model',
  num_attention_heads: 16,
  num_hidden_layers: 24,
  patch_size: 14,
  projection_dim: 768,
  vocab_size: 32000,
};

/** llava-hf/llava-1.5-7b-hf: text_config leaves hidden size, layers and heads to LlamaConfig (4096/32/32).
 * https://huggingface.co/llava-hf/llava-1.5-7b-hf/blob/main/config.json (copy:
 * https://huggingface.co/mohitsha/llava-1.5-7b-hf/blob/main/config.json). */
export const LLAVA_15_7B = {
  /** https://huggingface.co/llava-hf/llava-1.5-7b-hf/blob/main/processor_config.json: 576 patches + CLS, which the
   * 'default' strategy drops again in transformers (transformers.js does not subtract it: 577 tokens for 576 rows). */
  processor: {
    image_token: '<image>',
    num_additional_image_tokens: 1,
    patch_size: 14,
    processor_class: 'LlavaProcessor',
    vision_feature_select_strategy: 'default',
  },
  config: {
    architectures: ['LlavaForConditionalGeneration'],
    ignore_index: -100,
    image_token_index: 32000,
    model_type: 'llava',
    pad_token_id: 32001,
    projector_hidden_act: 'gelu',
    text_config: {
      architectures: ['LlamaForCausalLM'],
      max_position_embeddings: 4096,
      model_type: 'llama',
      rms_norm_eps: 1e-5,
      torch_dtype: 'float16',
      vocab_size: 32064,
    },
    tie_word_embeddings: false,
    vision_config: LLAVA_HF_CLIP_L_336,
    vision_feature_layer: -2,
    vision_feature_select_strategy: 'default',
  },
  /** https://huggingface.co/llava-hf/llava-1.5-7b-hf/blob/main/preprocessor_config.json */
  preprocessor: clipImageProcessor(336),
};

/** llava-hf/bakLlava-v1-hf: Mistral-7B text whose text_config leaves hidden size, layers and heads to MistralConfig.
 * https://huggingface.co/llava-hf/bakLlava-v1-hf/blob/main/config.json */
export const BAKLLAVA = {
  config: {
    architectures: ['LlavaForConditionalGeneration'],
    ignore_index: -100,
    image_token_index: 32000,
    model_type: 'llava',
    pad_token_id: 32001,
    projector_hidden_act: 'gelu',
    text_config: {
      intermediate_size: 14336,
      max_position_embeddings: 32768,
      model_type: 'mistral',
      num_key_value_heads: 8,
      rms_norm_eps: 1e-5,
      sliding_window: 4096,
      vocab_size: 32064,
    },
    tie_word_embeddings: false,
    vision_config: LLAVA_HF_CLIP_L_336,
    vision_feature_layer: -2,
    vision_feature_select_strategy: 'default',
  },
  preprocessor: LLAVA_15_7B.preprocessor,
};

/** SiglipImageProcessor as llava-hf's SigLIP LLaVAs ship it: squash to 384×384, bicubic, mean = std = 0.5.
 * https://huggingface.co/llava-hf/llava-interleave-qwen-0.5b-hf/blob/187fe5ebba14c29a67f99fe56f3351b058af3e10/preprocessor_config.json */
const SIGLIP_PREPROCESSOR = {
  do_normalize: true,
  do_rescale: true,
  do_resize: true,
  image_mean: [0.5, 0.5, 0.5],
  image_processor_type: 'SiglipImageProcessor',
  image_std: [0.5, 0.5, 0.5],
  processor_class: 'LlavaProcessor',
  resample: 3,
  rescale_factor: 0.00392156862745098,
  size: { height: 384, width: 384 },
};

/** llava-hf/llava-interleave-qwen-0.5b-hf: SigLIP (26 of so400m's 27 layers, 'full' features of the last) + Qwen1.5-0.5B.
 * https://huggingface.co/llava-hf/llava-interleave-qwen-0.5b-hf/blame/187fe5ebba14c29a67f99fe56f3351b058af3e10/config.json */
export const LLAVA_INTERLEAVE_QWEN_05B = {
  config: {
    architectures: ['LlavaForConditionalGeneration'],
    ignore_index: -100,
    image_token_index: 151646,
    model_type: 'llava',
    projector_hidden_act: 'gelu',
    text_config: {
      bos_token_id: 151643,
      eos_token_id: 151645,
      hidden_size: 1024,
      intermediate_size: 2816,
      max_position_embeddings: 32768,
      model_type: 'qwen2',
      num_attention_heads: 16,
      num_hidden_layers: 24,
      num_key_value_heads: 16,
      rope_theta: 1000000.0,
      tie_word_embeddings: true,
      vocab_size: 152000,
    },
    vision_config: {
      hidden_act: 'gelu_pytorch_tanh',
      hidden_size: 1152,
      image_size: 384,
      intermediate_size: 4304,
      layer_norm_eps: 1e-6,
      model_type: 'siglip_vision_model',
      num_attention_heads: 16,
      num_hidden_layers: 26,
      patch_size: 14,
      vision_use_head: false,
    },
    vision_feature_layer: -1,
    vision_feature_select_strategy: 'full',
  },
  preprocessor: SIGLIP_PREPROCESSOR,
  /** [UNCONFIRMED content, llava-family.md §6 #4] num_additional_image_tokens 0, patch 14 → 27·27 = 729. */
  processor: {
    image_token: '<image>',
    num_additional_image_tokens: 0,
    patch_size: 14,
    processor_class: 'LlavaProcessor',
    vision_feature_select_strategy: 'full',
  },
  /** https://huggingface.co/mlx-community/llava-interleave-qwen-0.5b-8bit/blob/main/chat_template.json (the llava-hf file). */
  chatTemplate:
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}" +
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>' }}{% endfor %}" +
    "{# Render all text next #}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ '\n' + content['text'] }}{% endfor %}" +
    "{{'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
};

/** llava-hf/llava-onevision-qwen2-0.5b-ov-hf: llava_onevision, SigLIP (26 layers) + Qwen2-0.5B-Instruct (14/2 heads).
 * https://huggingface.co/llava-hf/llava-onevision-qwen2-0.5b-ov-hf/blame/66d62be83612d49460229cc26117ec2e81f802ef/config.json
 * (the 36 pinpoints are LlavaOnevisionConfig's default list, here written out as the file does). */
export const LLAVA_ONEVISION_QWEN2_05B = {
  config: {
    architectures: ['LlavaOnevisionForConditionalGeneration'],
    ignore_index: -100,
    image_grid_pinpoints: [384, 768, 1152, 1536, 1920, 2304].flatMap((h) => [384, 768, 1152, 1536, 1920, 2304].map((w) => [h, w])),
    image_token_index: 151646,
    model_type: 'llava_onevision',
    projector_hidden_act: 'gelu',
    text_config: {
      bos_token_id: 151643,
      eos_token_id: 151645,
      hidden_size: 896,
      intermediate_size: 4864,
      max_position_embeddings: 32768,
      model_type: 'qwen2',
      num_attention_heads: 14,
      num_hidden_layers: 24,
      num_key_value_heads: 2,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000.0,
      tie_word_embeddings: true,
      vocab_size: 152000,
    },
    tie_word_embeddings: false,
    video_token_index: 151647,
    vision_aspect_ratio: 'anyres_max_9',
    vision_config: {
      hidden_size: 1152,
      image_size: 384,
      intermediate_size: 4304,
      model_type: 'siglip_vision_model',
      num_attention_heads: 16,
      num_hidden_layers: 26,
      patch_size: 14,
      vision_use_head: false,
    },
    vision_feature_layer: -1,
    vision_feature_select_strategy: 'full',
  },
  /** https://huggingface.co/llava-hf/llava-onevision-qwen2-0.5b-ov-hf/blob/main/preprocessor_config.json:
   * LlavaOnevisionImageProcessor, size {384,384}, do_pad, pinpoints (transformers.js: a plain squash, no anyres). */
  preprocessor: {
    do_convert_rgb: true,
    do_normalize: true,
    do_pad: true,
    do_rescale: true,
    do_resize: true,
    image_grid_pinpoints: [384, 768, 1152, 1536, 1920, 2304].flatMap((h) => [384, 768, 1152, 1536, 1920, 2304].map((w) => [h, w])),
    image_mean: [0.5, 0.5, 0.5],
    image_processor_type: 'LlavaOnevisionImageProcessor',
    image_std: [0.5, 0.5, 0.5],
    processor_class: 'LlavaOnevisionProcessor',
    resample: 3,
    rescale_factor: 0.00392156862745098,
    size: { height: 384, width: 384 },
  },
  /** https://huggingface.co/llava-hf/llava-onevision-qwen2-0.5b-ov-hf/blob/main/processor_config.json (178 B). */
  processor: { num_image_tokens: 729, processor_class: 'LlavaOnevisionProcessor', vision_feature_select_strategy: 'full' },
  /** https://huggingface.co/llava-hf/llava-onevision-qwen2-0.5b-ov-hf/blob/main/chat_template.json (convert script's). */
  chatTemplate:
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}" +
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}" +
    "{# Render all text next #}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}" +
    "{{'<|im_end|>\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
};

/** Xenova/nanoLLaVA (qnguyen3/nanoLLaVA exported): llava_qwen2 with its Qwen2 fields flat at top level, plus the
 * text_config/vision_config and num_image_tokens Xenova added.
 * https://huggingface.co/Xenova/nanoLLaVA/blob/main/config.json and https://huggingface.co/Xenova/nanoLLaVA/discussions/2/files;
 * original fields: https://huggingface.co/qnguyen3/nanoLLaVA/blob/main/config.json. image_token_index is
 * [UNCONFIRMED] (llava-family.md §6 #3): transformers.js needs it, and the fixture's tokenizer gives <image> its id. */
export const NANOLLAVA = {
  config: {
    bos_token_id: 151645,
    eos_token_id: 151645,
    hidden_size: 1024,
    image_aspect_ratio: 'pad',
    image_token_index: 151646,
    intermediate_size: 2816,
    mm_hidden_size: 1152,
    mm_projector_type: 'mlp2x_gelu',
    mm_vision_tower: 'google/siglip-so400m-patch14-384',
    model_type: 'llava_qwen2',
    num_attention_heads: 16,
    num_hidden_layers: 24,
    num_image_tokens: 729,
    num_key_value_heads: 16,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000.0,
    tie_word_embeddings: false,
    vocab_size: 151936,
    text_config: { model_type: 'qwen2', num_image_tokens: 729 },
    vision_config: {
      hidden_size: 1152,
      image_size: 384,
      intermediate_size: 4304,
      model_type: 'siglip_vision_model',
      num_attention_heads: 16,
      num_hidden_layers: 27,
      num_image_tokens: 729,
      patch_size: 14,
    },
  },
  /** https://huggingface.co/Xenova/nanoLLaVA/blob/8d4aae1e9b821050e14c4aea9d925240e1bdf0de/preprocessor_config.json */
  preprocessor: { ...SIGLIP_PREPROCESSOR, processor_class: undefined, image_processor_type: 'SiglipImageProcessor' },
  /** nanoLLaVA's tokenizer_config.json chat_template (ChatML over string content, as the Xenova README passes it:
   * https://huggingface.co/Xenova/nanoLLaVA). */
  chatTemplate:
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}" +
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
};

/** The widths of a public config shrunk for a test build: every other field as published. */
export function tiny<T extends { text_config?: object; vision_config?: object }>(
  config: T,
  widths: {
    vision?: Record<string, number>;
    text?: Record<string, number>;
    top?: Record<string, unknown>;
  },
): T {
  const copy = structuredClone(config) as Record<string, unknown>;
  if (widths.vision) copy.vision_config = { ...(copy.vision_config as object), ...widths.vision };
  if (widths.text) copy.text_config = { ...(copy.text_config as object), ...widths.text };
  return { ...copy, ...widths.top } as T;
}
