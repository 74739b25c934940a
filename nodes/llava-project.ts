// project: image features → embeddings in the LLM's space (the split layout's projector; features the vision
// encoder already projected pass through). The features' handle is consumed, also when its message is dropped.
import { projectImage } from '../lib/pipeline/image-values';
import { defineStage, StageDef } from './shared/stage';

export = defineStage<StageDef>({
  type: 'llava-project',
  input: 'msg.llava.imageFeatures',
  output: 'msg.llava.imageEmbeds',
  expected: 'image features from a clip encode node',
  working: 'projecting',
  timing: 'projector_ms',
  consumesInput: true,
  run: projectImage,
});
