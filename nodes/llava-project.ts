// project: image features → embeddings in the LLM's space (the split layout's projector; features the vision
// encoder already projected pass through). The features' handle is consumed, also when its message is dropped.
import type { Node, NodeAPI } from 'node-red';
import { featuresFrom, featuresValue } from './shared/image-values';
import { runStageNode, StageDef } from './shared/stage';

export = function register(RED: NodeAPI): void {
  function ProjectNode(this: Node, def: StageDef): void {
    RED.nodes.createNode(this, def);
    runStageNode(RED, this, def, {
      input: 'msg.llava.imageFeatures',
      output: 'msg.llava.imageEmbeds',
      expected: 'image features from a clip encode node',
      working: 'projecting',
      timing: 'projector_ms',
      consumesInput: true,
      parse: featuresFrom,
      run: async (model, features, signal) => {
        const embeds = await model.project(features, signal);
        return { value: featuresValue(embeds), ms: embeds.ms };
      },
      release: (model, features) => model.releaseImage(features),
    });
  }
  RED.nodes.registerType('llava-project', ProjectNode);
};
