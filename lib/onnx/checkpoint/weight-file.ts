// Opens one checkpoint file by its kind: .safetensors, a sharded index (*.index.json), or a PyTorch zip.
import { WeightSource } from '../weights';
import { openPytorchCheckpoint } from './pytorch';
import { openSafetensors, openSafetensorsIndex } from './safetensors';
import { openShardIndex } from './sharded';

export function openWeightFile(file: string): WeightSource {
  if (file.endsWith('.safetensors')) return openSafetensors(file);
  if (file.endsWith('.safetensors.index.json')) return openSafetensorsIndex(file);
  if (file.endsWith('.index.json')) return openShardIndex(file, openPytorchCheckpoint);
  return openPytorchCheckpoint(file);
}
