// clip encode: preprocessed pixels → image features kept in the runtime (a handle on msg).
import { encodeImage } from '../lib/pipeline/image-values';
import { defineStage, StageDef } from './shared/stage';

export = defineStage<StageDef>({
  type: 'llava-clip-encode',
  input: 'msg.llava.pixels',
  output: 'msg.llava.imageFeatures',
  expected: 'pixels from an image load node',
  working: 'encoding',
  timing: 'vision_ms',
  run: encodeImage,
});
