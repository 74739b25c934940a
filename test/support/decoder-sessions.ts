// A tiny model's embed and decoder graphs opened as worker sessions in this thread (for KvDecoder specs), and a
// session wrapper that records what each run was fed and bound.
import * as path from 'path';
import { HostedSession, loadSession } from '../../lib/runtime/session-host';
import type { TensorValue } from '../../lib/runtime/tensor';
import type { WorkerSession } from '../../lib/runtime/types';
import type { TinyModel } from './tiny-model';

export async function decoderSessions(model: TinyModel): Promise<{ embed: HostedSession; decoder: HostedSession }> {
  const open = (file: string) => loadSession(file, { modelPath: path.join(model.dir, 'onnx', file), providers: ['cpu'], threads: 1, config: {} });
  return { embed: await open('embed_tokens.onnx'), decoder: await open('decoder_model_merged.onnx') };
}

/** A real session whose runs are recorded: the feeds, and the outputs bound. */
export class RecordingSession implements WorkerSession {
  readonly runs: Array<{ feeds: Record<string, TensorValue>; bound: Record<string, TensorValue> | undefined }> = [];
  constructor(private readonly inner: HostedSession) {}
  get info() {
    return this.inner.info;
  }
  run(feeds: Record<string, TensorValue>, fetch?: string[], outputs?: Record<string, TensorValue>) {
    this.runs.push({ feeds, bound: outputs });
    return this.inner.run(feeds, fetch, outputs);
  }
}
