// Sharded checkpoints: an index JSON ({"weight_map": {tensor name: shard file}}) next to its shards, as
// transformers writes for model.safetensors.index.json and pytorch_model.bin.index.json.
import * as fs from 'fs';
import * as path from 'path';
import { WeightSource } from '../weights';
import { TensorTable } from './source';

/** What a shard reader returns: its float tensors, plus the names of tensors it does not offer. */
export type ShardSource = WeightSource & { skipped: string[] };

export function openShardIndex(indexFile: string, openShard: (file: string) => ShardSource): ShardSource {
  let index: { weight_map?: Record<string, unknown> };
  try {
    index = JSON.parse(fs.readFileSync(indexFile, 'utf8')) as typeof index;
  } catch (e) {
    throw new Error(`${indexFile}: cannot read the checkpoint index: ${(e as Error).message}`);
  }
  const weightMap = index.weight_map;
  if (!weightMap || typeof weightMap !== 'object') throw new Error(`${indexFile}: no "weight_map" object`);
  const dir = path.dirname(indexFile);
  const shards = new Map<string, ShardSource>();
  const table = new TensorTable();
  const skipped: string[] = [];
  for (const [name, shardName] of Object.entries(weightMap)) {
    if (typeof shardName !== 'string' || path.isAbsolute(shardName) || shardName.split(/[\\/]/).includes('..')) {
      throw new Error(`${indexFile}: weight_map entry for '${name}' is not a file name inside the folder`);
    }
    let shard = shards.get(shardName);
    if (!shard) {
      const shardPath = path.join(dir, shardName);
      if (!fs.existsSync(shardPath)) throw new Error(`${indexFile}: shard '${shardName}' (for '${name}') is missing`);
      shard = openShard(shardPath);
      shards.set(shardName, shard);
    }
    const tensor = shard.get(name);
    if (tensor) table.add(tensor);
    else if (shard.skipped.includes(name)) skipped.push(name);
    else throw new Error(`${indexFile}: '${name}' is listed in shard '${shardName}' but that shard does not hold it`);
  }
  return { names: () => table.names(), get: (n) => table.get(n), skipped };
}
