// The pieces of a pull that need no server: which files a variant needs, Hub ids, unsafe names, the environment.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { repoPath } from '../../lib/hub/cache';
import { looksLikeRepoId, parseRepoRef } from '../../lib/hub/repo-id';
import { globToRegExp, parseVariantSpec, selectFiles } from '../../lib/hub/select';
import { hubSettings } from '../../lib/hub/settings';

// The file list of an ONNX LLaVA repo as the Hub lists it (names as in onnx-community/llava-* repos).
const ONNX_REPO = [
  '.gitattributes',
  'README.md',
  'config.json',
  'generation_config.json',
  'preprocessor_config.json',
  'processor_config.json',
  'special_tokens_map.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'chat_template.jinja',
  ...['vision_encoder', 'embed_tokens', 'decoder_model_merged'].flatMap((g) => ['', '_fp16', '_q4', '_q4f16', '_quantized'].map((s) => `onnx/${g}${s}.onnx`)),
  'onnx/decoder_model_merged.onnx_data',
  'onnx/decoder_model_merged_fp16.onnx_data',
  'onnx/decoder_model_merged_fp16.onnx_data_1',
  'onnx/vision_encoder_fp16.onnx_data',
];
const SUPPORT = [
  'chat_template.jinja',
  'config.json',
  'generation_config.json',
  'preprocessor_config.json',
  'processor_config.json',
  'special_tokens_map.json',
  'tokenizer.json',
  'tokenizer_config.json',
];

describe('Hub file selection', () => {
  it('a variant: its graphs and their external data, plus configs, tokenizer and processor files', () => {
    const s = selectFiles(ONNX_REPO, parseVariantSpec('fp16'));
    assert.deepEqual(
      s.files,
      [
        ...SUPPORT.slice(0, 1),
        ...SUPPORT.slice(1, 5),
        'onnx/decoder_model_merged_fp16.onnx',
        'onnx/decoder_model_merged_fp16.onnx_data',
        'onnx/decoder_model_merged_fp16.onnx_data_1',
        'onnx/embed_tokens_fp16.onnx',
        'onnx/vision_encoder_fp16.onnx',
        'onnx/vision_encoder_fp16.onnx_data',
        ...SUPPORT.slice(5),
      ].sort(),
    );
    assert.deepEqual(s.graphs, { vision_encoder: 'fp16', embed_tokens: 'fp16', decoder_model_merged: 'fp16' });
  });

  it('per-graph variants; the small graphs fall back to fp32, the decoder does not', () => {
    const s = selectFiles(ONNX_REPO, parseVariantSpec('decoder_model_merged=q4,vision_encoder=fp16'));
    assert.deepEqual(s.graphs, { vision_encoder: 'fp16', embed_tokens: 'fp32', decoder_model_merged: 'q4' });
    assert.ok(s.files.includes('onnx/vision_encoder_fp16.onnx_data') && !s.files.includes('onnx/decoder_model_merged.onnx_data'));
    const partial = ONNX_REPO.filter((n) => !/(vision_encoder|embed_tokens)_q4\./.test(n));
    assert.deepEqual(selectFiles(partial, parseVariantSpec('q4')).graphs, { vision_encoder: 'fp32', embed_tokens: 'fp32', decoder_model_merged: 'q4' });
    assert.throws(
      () => selectFiles(ONNX_REPO, parseVariantSpec('int8')),
      /no int8 decoder_model_merged \(onnx\/decoder_model_merged_int8\.onnx\); available: fp32, fp16, q8, q4, q4f16/,
    );
    assert.throws(() => parseVariantSpec('decoder=q4'), /unknown graph "decoder"/);
    assert.throws(() => parseVariantSpec('q3'), /unknown weight variant "q3"/);
  });

  it("auto: config.json's transformers.js_config, else the recorded variant, else fp32; several without fp32 ask for a choice", () => {
    assert.equal(selectFiles(ONNX_REPO, parseVariantSpec()).graphs.decoder_model_merged, 'fp32');
    assert.equal(selectFiles(ONNX_REPO, parseVariantSpec(), [], { recorded: 'q4f16' }).graphs.decoder_model_merged, 'q4f16');
    const dtype = { dtype: { vision_encoder: 'fp16', embed_tokens: 'fp16', decoder_model_merged: 'q4' } };
    assert.deepEqual(selectFiles(ONNX_REPO, parseVariantSpec(), [], { transformersJs: dtype, recorded: 'q4f16' }).graphs, {
      vision_encoder: 'fp16',
      embed_tokens: 'fp16',
      decoder_model_merged: 'q4',
    });
    const noFp32 = ONNX_REPO.filter((n) => !/decoder_model_merged\.onnx/.test(n));
    assert.throws(() => selectFiles(noFp32, parseVariantSpec()), /decoder variants fp16, q8, q4, q4f16 and no fp32 one: choose one with --variant/);
  });

  it('--include globs add files; a checkpoint repo gets its safetensors; other repos are refused', () => {
    const s = selectFiles(ONNX_REPO, parseVariantSpec('q4'), ['README.md', 'onnx/*_q4f16.onnx']);
    assert.ok(s.files.includes('README.md') && s.files.includes('onnx/decoder_model_merged_q4f16.onnx'));
    assert.ok(globToRegExp('**/*.json').test('a/b/c.json') && globToRegExp('**/*.json').test('c.json') && !globToRegExp('*.json').test('a/c.json'));
    const ckpt = selectFiles(
      [
        'config.json',
        'model-00001-of-00002.safetensors',
        'model-00002-of-00002.safetensors',
        'model.safetensors.index.json',
        'pytorch_model.bin',
        'tokenizer.model',
      ],
      parseVariantSpec(),
    );
    assert.equal(ckpt.kind, 'checkpoint');
    assert.deepEqual(ckpt.files, [
      'config.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
      'tokenizer.model',
    ]);
    assert.throws(() => selectFiles(['README.md', 'model.gguf'], parseVariantSpec()), /not a LLaVA model repo/);
  });

  it('Hub ids and revisions; names that would escape the cache are refused', () => {
    assert.deepEqual(parseRepoRef('llava-hf/llava-1.5-7b-hf@refs/pr/3'), { repo: 'llava-hf/llava-1.5-7b-hf', revision: 'refs/pr/3' });
    assert.ok(looksLikeRepoId('onnx-community/nanoLLaVA-1.5') && !looksLikeRepoId('./models/x') && !looksLikeRepoId('/abs/x') && !looksLikeRepoId('a/b/c'));
    for (const bad of ['../x', 'a/..', 'a//b', 'x@..', 'x@a/../b']) assert.throws(() => parseRepoRef(bad.includes('@') ? `org/${bad}` : bad));
    for (const bad of ['../a.json', 'onnx/../../a', '/etc/passwd', 'a\\..\\b', 'C:/x', 'a/./b', '']) assert.throws(() => repoPath(bad), /unsafe file name/);
    assert.deepEqual(repoPath('onnx/decoder_model_merged.onnx'), ['onnx', 'decoder_model_merged.onnx']);
  });

  it('settings from HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_TOKEN, the token file and HF_HUB_OFFLINE', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-hf-home-'));
    try {
      fs.writeFileSync(path.join(home, 'token'), 'hf_from_file\n');
      const s = hubSettings({}, { HF_HOME: home, HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:1234/' });
      assert.deepEqual(s, { endpoint: 'http://127.0.0.1:1234', cacheDir: path.join(home, 'hub'), token: 'hf_from_file', offline: true });
      const t = hubSettings({ cacheDir: 'rel' }, { HF_HOME: home, HF_TOKEN: 'hf_env', HF_HUB_CACHE: '/c' });
      assert.deepEqual(t, { endpoint: 'https://huggingface.co', cacheDir: path.resolve('rel'), token: 'hf_env', offline: false });
      assert.equal(hubSettings({}, { HOME: home, HF_HUB_CACHE: '/c' }).cacheDir, '/c');
      assert.throws(() => hubSettings({}, { HF_ENDPOINT: 'ftp://x' }), /must be an http\(s\) URL/);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
