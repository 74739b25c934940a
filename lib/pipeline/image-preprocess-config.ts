// A folder's preprocessor_config.json as the options of our PIL-exact preprocessing: the image processor class
// decides the geometry (CLIPImageProcessor: shortest edge, then centre crop; SiglipImageProcessor and
// LlavaOnevisionImageProcessor's single-image path: a squash to height×width; LlavaImageProcessor with do_pad:
// LLaVA's expand2square first), then resample, rescale and mean/std. A field the file leaves out takes the class
// default (transformers image_processing_clip.py, image_processing_siglip.py, image_processing_llava.py,
// image_processing_llava_onevision.py), except sizes, which default to the vision tower's.
import { CLIP_MEAN, CLIP_STD } from '../model/config';
import type { PreprocessorConfig } from '../model/folder';
import type { PreprocessOptions, Resample } from './types';

type Rgb = [number, number, number];
const IMAGENET_STANDARD: Rgb = [0.5, 0.5, 0.5];

interface ProcessorClass {
  /** 'shortest-edge': resize the shortest edge then centre crop; 'exact': resize to height×width. */
  geometry: 'shortest-edge' | 'exact';
  centreCrop: boolean;
  mean: Rgb;
  std: Rgb;
  /** do_pad means LLaVA's pad-to-square (LlavaImageProcessor); for OneVision it pads anyres patches, a no-op here. */
  padToSquare: boolean;
}

const CLIP_LIKE: ProcessorClass = { geometry: 'shortest-edge', centreCrop: true, mean: CLIP_MEAN, std: CLIP_STD, padToSquare: false };

const PROCESSOR_CLASSES: Record<string, ProcessorClass> = {
  CLIPImageProcessor: CLIP_LIKE,
  LlavaImageProcessor: { ...CLIP_LIKE, padToSquare: true },
  SiglipImageProcessor: { geometry: 'exact', centreCrop: false, mean: IMAGENET_STANDARD, std: IMAGENET_STANDARD, padToSquare: false },
  // transformers.js runs OneVision's single-image path: a plain resize to size, no anyres tiles.
  LlavaOnevisionImageProcessor: { geometry: 'exact', centreCrop: false, mean: CLIP_MEAN, std: CLIP_STD, padToSquare: false },
};

const REFUSED_CLASSES: Record<string, string> = {
  LlavaNextImageProcessor: 'LLaVA-NeXT anyres tiling is not implemented',
};

/** PIL filter numbers (Image.Resampling) the processors use. */
const RESAMPLE: Record<number, Resample> = { 2: 'bilinear', 3: 'bicubic' };

function square(value: { height?: number; width?: number } | number | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number') return value;
  if (value.height !== value.width) {
    throw new Error(`preprocessor_config.json ${what} is ${value.height}×${value.width}: only square inputs are supported`);
  }
  return value.height;
}

function triple(values: number[] | undefined, fallback: Rgb, what: string): Rgb {
  if (values === undefined) return [...fallback];
  if (!Array.isArray(values) || values.length !== 3 || !values.every(Number.isFinite)) {
    throw new Error(`preprocessor_config.json ${what} must be three numbers, got ${JSON.stringify(values)}`);
  }
  return values as Rgb;
}

/** do_rescale / rescale_factor; 1/255 (the default) is left implicit. */
function rescaleOf(p: PreprocessorConfig): { rescale?: number } {
  if (p.do_rescale === false) return { rescale: 1 };
  const factor = p.rescale_factor;
  return factor === undefined || Math.abs(factor - 1 / 255) < 1e-12 ? {} : { rescale: factor };
}

/** The preprocessing a folder's preprocessor_config.json describes, for a vision tower that takes imageSize². */
export function preprocessFromConfig(p: PreprocessorConfig, imageSize: number): PreprocessOptions {
  const type = (p.image_processor_type ?? 'CLIPImageProcessor').replace(/Fast$/, '');
  if (REFUSED_CLASSES[type]) throw new Error(`preprocessor_config.json: ${type} is not supported (${REFUSED_CLASSES[type]})`);
  const cls = PROCESSOR_CLASSES[type];
  if (!cls) {
    throw new Error(`preprocessor_config.json: image_processor_type ${type} is not supported (supported: ${Object.keys(PROCESSOR_CLASSES).join(', ')})`);
  }
  if (p.do_resize === false) throw new Error('preprocessor_config.json: do_resize false is not supported (the tower needs a fixed size)');
  const resample = RESAMPLE[p.resample ?? 3];
  if (!resample) throw new Error(`preprocessor_config.json: resample ${p.resample} is not supported (2 bilinear, 3 bicubic)`);

  const size = p.size;
  const exact = typeof size === 'object' && size.height !== undefined ? square(size, 'size') : undefined;
  if (typeof size === 'object' && size.longest_edge !== undefined && exact === undefined && size.shortest_edge === undefined) {
    throw new Error('preprocessor_config.json: size.longest_edge is not supported (shortest_edge or height×width)');
  }
  const edge = typeof size === 'number' ? size : typeof size === 'object' ? size.shortest_edge : undefined;
  const geometry = exact !== undefined ? 'exact' : edge !== undefined ? 'shortest-edge' : cls.geometry;
  const centreCrop = p.do_center_crop ?? cls.centreCrop;
  let options: Pick<PreprocessOptions, 'mode' | 'size' | 'shortestEdge'>;
  if (geometry === 'shortest-edge') {
    if (!centreCrop) {
      throw new Error('preprocessor_config.json resizes the shortest edge without a centre crop: the result is not square');
    }
    const crop = square(p.crop_size, 'crop_size') ?? imageSize;
    options = { mode: 'crop', size: crop, shortestEdge: edge ?? crop };
  } else {
    // A resize to side×side whatever the aspect: our squash.
    const side = exact ?? imageSize;
    const crop = centreCrop ? (square(p.crop_size, 'crop_size') ?? side) : side;
    if (crop !== side) throw new Error(`preprocessor_config.json crops ${crop} out of a ${side}×${side} resize: not supported`);
    options = { mode: 'squash', size: side };
  }
  if (cls.padToSquare && p.do_pad === true) options = { ...options, mode: 'pad' };
  if (options.size !== imageSize) {
    throw new Error(`preprocessor_config.json makes ${options.size}×${options.size} pixels but vision_config.image_size is ${imageSize}`);
  }
  const normalize = p.do_normalize ?? true;
  return {
    ...options,
    resample,
    ...rescaleOf(p),
    mean: normalize ? triple(p.image_mean, cls.mean, 'image_mean') : [0, 0, 0],
    std: normalize ? triple(p.image_std, cls.std, 'image_std') : [1, 1, 1],
  };
}
