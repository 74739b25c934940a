// project: image features → embeddings in the LLM's space (the split layout's projector; features the vision
// encoder already projected pass through).
import type { Node, NodeAPI, NodeDef } from 'node-red';
import { handleInput } from './shared/input';
import { featuresFrom, featuresValue, recordTiming } from './shared/image-values';
import { useModel } from './shared/model-client';
import { describeProperty, readRequiredProperty, typedProperty, writeProperty } from './shared/properties';
import { StatusReporter } from './shared/status';

interface ProjectDef extends NodeDef {
  model: string;
  input: string;
  inputType: string;
  output: string;
  outputType: string;
}

export = function register(RED: NodeAPI): void {
  function ProjectNode(this: Node, def: ProjectDef): void {
    RED.nodes.createNode(this, def);
    const status = new StatusReporter(this);
    const input = typedProperty(def.input, def.inputType, 'msg.llava.imageFeatures');
    const output = typedProperty(def.output, def.outputType, 'msg.llava.imageEmbeds');
    const client = useModel(RED, this, def.model, status);
    handleInput(this, {
      status,
      process: async (msg, send, signal) => {
        const features = featuresFrom(await readRequiredProperty(RED, this, input, msg, 'image features from a clip encode node'), describeProperty(input));
        const model = await client.model();
        status.working('projecting');
        const embeds = await model.project(features, signal);
        writeProperty(RED, this, output, msg, featuresValue(embeds));
        // The features were consumed; don't leave a dangling handle where they were.
        if (input.type === 'msg' && (input.value !== output.value || output.type !== 'msg')) RED.util.setMessageProperty(msg, input.value, undefined);
        status.ready(model.provider);
        recordTiming(msg, 'projector_ms', embeds.ms);
        send(msg);
      },
    });
  }
  RED.nodes.registerType('llava-project', ProjectNode);
};
