// clip encode: preprocessed pixels → image features kept in the runtime (a handle on msg).
import type { Node, NodeAPI } from 'node-red';
import { featuresValue, pixelsFrom } from './shared/image-values';
import { runStageNode, StageDef } from './shared/stage';

export = function register(RED: NodeAPI): void {
  function ClipEncodeNode(this: Node, def: StageDef): void {
    RED.nodes.createNode(this, def);
    runStageNode(RED, this, def, {
      input: 'msg.llava.pixels',
      output: 'msg.llava.imageFeatures',
      expected: 'pixels from an image load node',
      working: 'encoding',
      timing: 'vision_ms',
      parse: pixelsFrom,
      run: async (model, pixels, signal) => {
        const features = await model.encodeImage(pixels, signal);
        return { value: featuresValue(features), ms: features.ms };
      },
    });
  }
  RED.nodes.registerType('llava-clip-encode', ClipEncodeNode);
};
