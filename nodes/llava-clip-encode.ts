// clip encode: preprocessed pixels → image features kept in the runtime (a handle on msg).
import type { Node, NodeAPI, NodeDef } from 'node-red';
import { handleInput } from './shared/input';
import { featuresValue, pixelsFrom, recordTiming } from './shared/image-values';
import { useModel } from './shared/model-client';
import { describeProperty, readRequiredProperty, typedProperty, writeProperty } from './shared/properties';
import { StatusReporter } from './shared/status';

interface ClipEncodeDef extends NodeDef {
  model: string;
  input: string;
  inputType: string;
  output: string;
  outputType: string;
}

export = function register(RED: NodeAPI): void {
  function ClipEncodeNode(this: Node, def: ClipEncodeDef): void {
    RED.nodes.createNode(this, def);
    const status = new StatusReporter(this);
    const input = typedProperty(def.input, def.inputType, 'msg.llava.pixels');
    const output = typedProperty(def.output, def.outputType, 'msg.llava.imageFeatures');
    const client = useModel(RED, this, def.model, status);
    handleInput(this, {
      status,
      process: async (msg, send, signal) => {
        const pixels = pixelsFrom(await readRequiredProperty(RED, this, input, msg, 'pixels from an image load node'), describeProperty(input));
        const model = await client.model();
        status.working('encoding');
        const features = await model.encodeImage(pixels, signal);
        writeProperty(RED, this, output, msg, featuresValue(features));
        status.ready(model.provider);
        recordTiming(msg, 'vision_ms', features.ms);
        send(msg);
      },
    });
  }
  RED.nodes.registerType('llava-clip-encode', ClipEncodeNode);
};
