#!/usr/bin/python3
"""Trains the demo LLaVA on the synthetic scenes that export-data.js wrote, and saves it as a Hugging Face
LLaVA checkpoint (model.safetensors, llava-hf weight names) in the same folder, for `llava build --from`.

The model is the architecture our ONNX builder writes (transformers' LlavaForConditionalGeneration): a CLIP vision
tower (bias-free patch conv, class token, pre-LayerNorm, quick-GELU MLPs) whose penultimate layer, class token
dropped, goes through the mlp2x_gelu projector into a LLaMA decoder (RMSNorm, rotate-half RoPE, grouped-query
attention, SwiGLU). Only the caption tokens (and EOS) are trained on, as in LLaVA's instruction tuning, plus two
auxiliary losses that play the part of LLaVA's feature-alignment stage: from the mean of the projected image features,
a linear probe predicts which words the caption contains, and from each patch's projected feature another predicts
the object that covers that patch (or none): its colour, shape and part in the caption (the one shape, one of two or
three alike, the one on the left, the one on the right), so every patch of a shape learns what the caption says of
it. Without them the decoder first learns the captions' grammar and takes thousands of steps to start reading the
image; the probes are not part of the saved model.
At the end (and every --eval-every steps when given) it captions the held-out scenes (eval/) greedily and prints
the share exactly right.

Usage: /usr/bin/python3 scripts/demo-model/train.py CHECKPOINT_DIR [--steps N] [--batch N] [--lr X] [--threads N]
Needs Debian's python3-torch and python3-numpy (apt-get install python3-torch python3-numpy), and an optimized BLAS
(libopenblas0-pthread): with Debian's reference BLAS a step is about 7x slower. Seeded: the same data, steps and
threads give the same weights on the same torch build.
"""
import argparse
import json
import math
import os
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 20261202


class VisionTower(nn.Module):
    def __init__(self, v):
        super().__init__()
        d, self.heads = v["hidden_size"], v["num_attention_heads"]
        self.patch = v["patch_size"]
        n = (v["image_size"] // self.patch) ** 2 + 1
        self.patch_embedding = nn.Conv2d(3, d, self.patch, self.patch, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(d) * 0.02)
        self.position_embedding = nn.Embedding(n, d)
        self.pre_layrnorm = nn.LayerNorm(d, eps=v.get("layer_norm_eps", 1e-5))
        self.layers = nn.ModuleList([VisionLayer(d, v["intermediate_size"], v.get("layer_norm_eps", 1e-5)) for _ in range(v["num_hidden_layers"])])

    def forward(self, pixels, feature_layer):
        x = self.patch_embedding(pixels).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_embedding.expand(x.shape[0], 1, -1), x], dim=1) + self.position_embedding.weight
        # Hidden state k is after k layers; the layers past the feature layer do not change the features: skip them.
        used = feature_layer % (len(self.layers) + 1)
        x = self.pre_layrnorm(x)
        for layer in self.layers[:used]:
            x = layer(x, self.heads)
        return x[:, 1:]  # 'default' strategy: the class token dropped


class VisionLayer(nn.Module):
    def __init__(self, d, inner, eps):
        super().__init__()
        self.layer_norm1, self.layer_norm2 = nn.LayerNorm(d, eps=eps), nn.LayerNorm(d, eps=eps)
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(d, inner), nn.Linear(inner, d)

    def forward(self, x, heads):
        b, n, d = x.shape
        h = self.layer_norm1(x)
        q, k, v = (p(h).view(b, n, heads, d // heads).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        a = F.scaled_dot_product_attention(q, k, v) if hasattr(F, "scaled_dot_product_attention") else attention(q, k, v, None)
        x = x + self.out_proj(a.transpose(1, 2).reshape(b, n, d))
        h = self.fc1(self.layer_norm2(x))
        return x + self.fc2(h * torch.sigmoid(1.702 * h))  # quick_gelu


def attention(q, k, v, mask):
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores + mask
    return scores.softmax(-1) @ v


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(d)), eps

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


class DecoderLayer(nn.Module):
    def __init__(self, t):
        super().__init__()
        h, hd = t["hidden_size"], t["head_dim"]
        self.heads, self.kv_heads, self.hd = t["num_attention_heads"], t["num_key_value_heads"], hd
        self.input_layernorm = RMSNorm(h, t["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(h, t["rms_norm_eps"])
        self.q_proj = nn.Linear(h, self.heads * hd, bias=False)
        self.k_proj = nn.Linear(h, self.kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(h, self.kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(self.heads * hd, h, bias=False)
        self.gate_proj = nn.Linear(h, t["intermediate_size"], bias=False)
        self.up_proj = nn.Linear(h, t["intermediate_size"], bias=False)
        self.down_proj = nn.Linear(t["intermediate_size"], h, bias=False)

    def forward(self, x, cos, sin, mask):
        b, n, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(b, n, self.heads, self.hd).transpose(1, 2)
        k = self.k_proj(h).view(b, n, self.kv_heads, self.hd).transpose(1, 2)
        v = self.v_proj(h).view(b, n, self.kv_heads, self.hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        rep = self.heads // self.kv_heads
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        a = attention(q, k, v, mask).transpose(1, 2).reshape(b, n, -1)
        x = x + self.o_proj(a)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llava(nn.Module):
    def __init__(self, config):
        super().__init__()
        v, t = config["vision_config"], config["text_config"]
        self.feature_layer = config["vision_feature_layer"]
        self.vision = VisionTower(v)
        self.linear_1 = nn.Linear(v["hidden_size"], t["hidden_size"])
        self.linear_2 = nn.Linear(t["hidden_size"], t["hidden_size"])
        self.embed_tokens = nn.Embedding(t["vocab_size"], t["hidden_size"])
        self.layers = nn.ModuleList([DecoderLayer(t) for _ in range(t["num_hidden_layers"])])
        self.norm = RMSNorm(t["hidden_size"], t["rms_norm_eps"])
        self.lm_head = nn.Linear(t["hidden_size"], t["vocab_size"], bias=False)
        self.theta, self.hd = t["rope_theta"], t["head_dim"]
        # The auxiliary probes (not saved): the caption's words from all image features, and for each patch the object
        # covering it (see patch_labels).
        self.caption_words = nn.Linear(t["hidden_size"], t["vocab_size"])
        self.patch_objects = nn.Linear(t["hidden_size"], PATCH_CLASSES)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, ids, image_mask, pixels, predict=None):
        """The logits at the positions `predict` marks (all of them when None), and the two probes' logits."""
        features = self.linear_2(F.gelu(self.linear_1(self.vision(pixels, self.feature_layer))))  # erf GELU
        x = self.embed_tokens(ids).clone()
        x[image_mask] = features.reshape(-1, features.shape[-1])
        n = ids.shape[1]
        inv = 1.0 / (self.theta ** (torch.arange(0, self.hd, 2, dtype=torch.float32) / self.hd))
        angles = torch.outer(torch.arange(n, dtype=torch.float32), inv)
        angles = torch.cat([angles, angles], dim=-1)
        cos, sin = angles.cos(), angles.sin()
        mask = torch.full((n, n), float("-inf")).triu(1)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        x = self.norm(x)
        return self.lm_head(x if predict is None else x[predict]), self.caption_words(features.mean(dim=1)), self.patch_objects(features)

    def hf_parameters(self):
        """The saved parameters under llava-hf's names (transformers < 4.52 layout)."""
        out = {}
        vp = "vision_tower.vision_model"
        out[f"{vp}.embeddings.patch_embedding.weight"] = self.vision.patch_embedding.weight
        out[f"{vp}.embeddings.class_embedding"] = self.vision.class_embedding
        out[f"{vp}.embeddings.position_embedding.weight"] = self.vision.position_embedding.weight
        for n in ("weight", "bias"):
            out[f"{vp}.pre_layrnorm.{n}"] = getattr(self.vision.pre_layrnorm, n)
        for i, layer in enumerate(self.vision.layers):
            p = f"{vp}.encoder.layers.{i}"
            for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
                for n in ("weight", "bias"):
                    out[f"{p}.self_attn.{name}.{n}"] = getattr(getattr(layer, name), n)
            for name in ("layer_norm1", "layer_norm2", "fc1", "fc2"):
                for n in ("weight", "bias"):
                    key = f"{p}.mlp.{name}.{n}" if name.startswith("fc") else f"{p}.{name}.{n}"
                    out[key] = getattr(getattr(layer, name), n)
        for name in ("linear_1", "linear_2"):
            for n in ("weight", "bias"):
                out[f"multi_modal_projector.{name}.{n}"] = getattr(getattr(self, name), n)
        tp = "language_model.model"
        out[f"{tp}.embed_tokens.weight"] = self.embed_tokens.weight
        for i, layer in enumerate(self.layers):
            p = f"{tp}.layers.{i}"
            out[f"{p}.input_layernorm.weight"] = layer.input_layernorm.weight
            out[f"{p}.post_attention_layernorm.weight"] = layer.post_attention_layernorm.weight
            for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
                out[f"{p}.self_attn.{name}.weight"] = getattr(layer, name).weight
            for name in ("gate_proj", "up_proj", "down_proj"):
                out[f"{p}.mlp.{name}.weight"] = getattr(layer, name).weight
        out[f"{tp}.norm.weight"] = self.norm.weight
        out["language_model.lm_head.weight"] = self.lm_head.weight
        return out


def write_safetensors(path, tensors):
    """The safetensors format: an 8-byte little-endian header length, a JSON header, then the raw tensors."""
    header, offset = {}, 0
    for name in sorted(tensors):
        size = tensors[name].nbytes
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob)
        for name in sorted(tensors):
            f.write(tensors[name].astype("<f4").tobytes())


ROLES = 5  # the part an object plays in its caption: the one, one of two or three alike, on the left, on the right
PATCH_CLASSES = 1 + 4 * 3 * ROLES  # nothing, or colour × shape × role


def inside(shape, dx, dy, r):
    """Whether points at (dx, dy) from an object's centre are inside it (scenes.ts draws the shapes)."""
    if shape == 0:  # circle
        return np.hypot(dx, dy) <= r
    if shape == 1:  # square
        return np.maximum(np.abs(dx), np.abs(dy)) <= r
    return (np.abs(dy) <= r) & (np.abs(dx) <= (dy + r) / 2)  # triangle, apex up


def patch_labels(objects, grid, samples=4):
    """For each scene and patch, the object covering the most of the patch (a quarter of it at least; an object's
    centre patch is always its own) as colour × shape × role, or 0 for background."""
    sub = (np.arange(grid * samples) + 0.5) / (grid * samples)
    px, py = np.meshgrid(sub, sub)
    out = np.zeros((len(objects), grid * grid), dtype=np.int64)
    for i, scene_objects in enumerate(objects):
        different = len(scene_objects) == 2 and scene_objects[0][:2] != scene_objects[1][:2]
        best = np.zeros(grid * grid)
        for colour, shape, x, y, r in scene_objects:
            role = (3 if x < max(o[2] for o in scene_objects) else 4) if different else len(scene_objects) - 1
            label = 1 + (colour * 3 + shape) * ROLES + role
            cover = inside(shape, px - x, py - y, r).reshape(grid, samples, grid, samples).sum(axis=(1, 3)).reshape(-1) / samples**2
            centre = int(y * grid) * grid + int(x * grid)
            cover[centre] = max(cover[centre], 1.0)
            take = (cover >= 0.25) & (cover > best)
            out[i, take], best[take] = label, cover[take]
    return out


def batches(data, pixels, batch_size, vocab_size, patch_classes, generator):
    """Random (scene, prompt) pairs; sequences in a batch share a prompt, so they need no padding but the caption's.
    Scenes of two different shapes are drawn twice as often as the others: naming the left one first is the hardest
    part of the captions to learn (the decoder must read each object's column from its image tokens)."""
    prompts, captions = data["prompts"], data["captions"]
    weights = torch.tensor([2.0 if len(o) == 2 and o[0][:2] != o[1][:2] else 1.0 for o in data["objects"]])
    while True:
        prompt = prompts[torch.randint(len(prompts), (1,), generator=generator).item()]
        scenes = torch.multinomial(weights, batch_size, replacement=True, generator=generator).tolist()
        longest = max(len(captions[s]) for s in scenes)
        ids, labels = [], []
        for s in scenes:
            pad = longest - len(captions[s])
            seq = prompt["ids"] + captions[s] + [captions[s][-1]] * pad
            ids.append(seq)
            labels.append([-100] * len(prompt["ids"]) + captions[s][0:] + [-100] * pad)
        ids = torch.tensor(ids)
        # Position i predicts token i+1.
        labels = torch.tensor(labels)[:, 1:]
        image_mask = torch.zeros_like(ids, dtype=torch.bool)
        image_mask[:, prompt["imagePositions"]] = True
        words = torch.zeros(batch_size, vocab_size)
        for row, s in enumerate(scenes):
            words[row, captions[s][:-1]] = 1.0
        yield ids, image_mask, torch.from_numpy(np.asarray(pixels[scenes])), labels, words, torch.from_numpy(patch_classes[scenes])


def load_set(folder, name):
    data = json.load(open(os.path.join(folder, name, "examples.json")))
    size = data["imageSize"]
    pixels = np.memmap(os.path.join(folder, name, "pixels.f32"), dtype="<f4", mode="r").reshape(-1, 3, size, size)
    return data, pixels


@torch.no_grad()
def held_out_accuracy(model, data, pixels, eos, prompt_index=1, max_tokens=24):
    """Greedy captions of the held-out scenes (the chat prompt with the default question, as `llava generate` asks):
    the share whose caption comes out exactly right, and a few of the misses."""
    model.eval()
    prompt, captions = data["prompts"][prompt_index], data["captions"]
    right, misses = 0, []
    for first in range(0, len(captions), 50):
        scenes = list(range(first, min(first + 50, len(captions))))
        ids = torch.tensor([prompt["ids"]] * len(scenes))
        px = torch.from_numpy(np.asarray(pixels[scenes]))
        out = [[] for _ in scenes]
        for _ in range(max_tokens):
            image_mask = torch.zeros_like(ids, dtype=torch.bool)
            image_mask[:, prompt["imagePositions"]] = True
            logits, _, _ = model(ids, image_mask, px)
            nxt = logits[:, -1].argmax(-1)
            for row, t in enumerate(nxt.tolist()):
                if not out[row] or out[row][-1] != eos:
                    out[row].append(t)
            if all(o and o[-1] == eos for o in out):
                break
            ids = torch.cat([ids, nxt[:, None]], dim=1)
        for row, s in enumerate(scenes):
            if out[row] == captions[s]:
                right += 1
            elif len(misses) < 5:
                misses.append(f"{data['captionTexts'][s]!r} (got other ids)")
    model.train()
    return right / len(captions), misses


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--patch-weight", type=float, default=1.0)
    # An evaluation mid-run slowed the steps after it ~3x (0.37 -> 1.0-1.1 s, cause not found): by default only at the end.
    parser.add_argument("--eval-every", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(args.threads)
    config = json.load(open(os.path.join(args.checkpoint, "config.json")))
    data, pixels = load_set(args.checkpoint, "train")
    held_out = load_set(args.checkpoint, "eval")
    eos = config["text_config"]["eos_token_id"]
    model = Llava(config)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.05)
    generator = torch.Generator().manual_seed(SEED)
    v = config["vision_config"]
    patch_classes = patch_labels(data["objects"], v["image_size"] // v["patch_size"])
    stream = batches(data, pixels, args.batch, config["text_config"]["vocab_size"], patch_classes, generator)
    start = time.time()
    for step in range(1, args.steps + 1):
        ids, image_mask, px, labels, words, objects = next(stream)
        # Position i predicts token i+1: only the caption's positions are scored.
        predict = F.pad(labels != -100, (0, 1))
        logits, word_logits, object_logits = model(ids, image_mask, px, predict)
        caption_loss = F.cross_entropy(logits, labels[labels != -100])
        loss = caption_loss + F.binary_cross_entropy_with_logits(word_logits, words) * words.shape[1] / 16
        loss = loss + args.patch_weight * F.cross_entropy(object_logits.reshape(-1, PATCH_CLASSES), objects.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        schedule.step()
        if step % 100 == 0 or step == args.steps:
            print(f"step {step}/{args.steps} caption loss {caption_loss.item():.4f}, total {loss.item():.4f} ({time.time() - start:.0f} s)", flush=True)
        if (args.eval_every and step % args.eval_every == 0) or step == args.steps:
            exact, misses = held_out_accuracy(model, *held_out, eos)
            print(f"step {step}: held-out captions exactly right {exact * 100:.1f} %; missed e.g. {misses}", flush=True)
    tensors = {name: p.detach().float().contiguous().numpy() for name, p in model.hf_parameters().items()}
    write_safetensors(os.path.join(args.checkpoint, "model.safetensors"), tensors)
    print(f"wrote {os.path.join(args.checkpoint, 'model.safetensors')}")


if __name__ == "__main__":
    main()
