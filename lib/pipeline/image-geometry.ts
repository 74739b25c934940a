// Where each ResizeMode puts the source image, in the integer arithmetic the Python pipelines use.

import type { ResizeMode } from './types';

export interface ResizePlan {
  /** Square canvas side the image is pasted on first (pad mode only; 0 when no padding). */
  padSide: number;
  padLeft: number;
  padTop: number;
  /** Size the (padded) image is resized to with the bicubic kernel. */
  resizeWidth: number;
  resizeHeight: number;
  /** Top-left corner of the size×size crop taken from the resized image. */
  cropLeft: number;
  cropTop: number;
}

/** HF CLIPImageProcessor: shortest edge → edge, long edge → int(edge*long/short); centre crop size×size at (D-size)//2. */
function shortestEdgeThenCentreCrop(width: number, height: number, size: number, edge: number) {
  const [resizeWidth, resizeHeight] = width <= height ? [edge, Math.floor((edge * height) / width)] : [Math.floor((edge * width) / height), edge];
  if (resizeWidth < size || resizeHeight < size) {
    throw new Error(`a ${width}×${height} image resized to shortest edge ${edge} is smaller than the ${size}×${size} crop`);
  }
  return {
    resizeWidth,
    resizeHeight,
    cropLeft: Math.floor((resizeWidth - size) / 2),
    cropTop: Math.floor((resizeHeight - size) / 2),
  };
}

/**
 * crop: CLIPImageProcessor (llava-hf), shortest edge then centre crop. pad: LLaVA-1.5 expand2square — paste centred at ((side-w)//2, (side-h)//2)
 * on a max(w,h) square — then CLIPImageProcessor. squash: mmpretrain Resize to size×size, aspect ignored.
 */
export function planResize(mode: ResizeMode, width: number, height: number, size: number, shortestEdge = size): ResizePlan {
  const noPad = { padSide: 0, padLeft: 0, padTop: 0 };
  switch (mode) {
    case 'squash':
      return { ...noPad, resizeWidth: size, resizeHeight: size, cropLeft: 0, cropTop: 0 };
    case 'crop':
      return { ...noPad, ...shortestEdgeThenCentreCrop(width, height, size, shortestEdge) };
    case 'pad': {
      const side = Math.max(width, height);
      return {
        padSide: side,
        padLeft: Math.floor((side - width) / 2),
        padTop: Math.floor((side - height) / 2),
        ...shortestEdgeThenCentreCrop(side, side, size, shortestEdge),
      };
    }
    default:
      throw new Error(`unknown resize mode "${String(mode)}": expected crop, pad or squash`);
  }
}
