// image load: bytes, a base64/data-URI string, an object holding one, or an allowed file path → preprocessed pixels.
import type { Node, NodeAPI, NodeDef } from 'node-red';
import { resolveImageInput } from '../lib/pipeline/image-input';
import type { ResizeMode } from '../lib/pipeline/types';
import { handleInput } from './shared/input';
import { useModel } from './shared/model-client';
import { pixelsValue, recordTiming } from './shared/image-values';
import { readRequiredProperty, typedProperty, writeProperty } from './shared/properties';
import { StatusReporter } from './shared/status';

interface ImageLoadDef extends NodeDef {
  model: string;
  input: string;
  inputType: string;
  output: string;
  outputType: string;
  /** Not `resize`: the editor keeps its own redraw flag under that name on every node. */
  resizeMode: 'model' | ResizeMode;
  maxInputPixels: number | string;
}

export = function register(RED: NodeAPI): void {
  function ImageLoadNode(this: Node, def: ImageLoadDef): void {
    RED.nodes.createNode(this, def);
    const status = new StatusReporter(this);
    const input = typedProperty(def.input, def.inputType, 'msg.payload');
    const output = typedProperty(def.output, def.outputType, 'msg.llava.pixels');
    const maxInputPixels = Number(def.maxInputPixels) || undefined;
    const client = useModel(RED, this, def.model, status);
    handleInput(this, {
      status,
      process: async (msg, send) => {
        const value = await readRequiredProperty(RED, this, input, msg, 'an image (Buffer, base64 string, data URI or file path)');
        const model = await client.model();
        const bytes = await resolveImageInput(value, { allowedRoots: client.imageRoots });
        const image = await model.preprocess(bytes, {
          ...(def.resizeMode && def.resizeMode !== 'model' ? { mode: def.resizeMode } : {}),
          ...(maxInputPixels ? { maxInputPixels } : {}),
        });
        const mode = def.resizeMode && def.resizeMode !== 'model' ? def.resizeMode : model.preset.preprocess.mode;
        writeProperty(RED, this, output, msg, pixelsValue(image.pixels, image.size, mode, image.sourceWidth, image.sourceHeight));
        recordTiming(msg, 'preprocess_ms', image.ms);
        send(msg);
      },
    });
  }
  RED.nodes.registerType('llava-image-load', ImageLoadNode);
};
