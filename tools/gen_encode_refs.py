#!/usr/bin/env python3
"""gen_encode_refs.py: reference features for tests/test_vqa_encode.c (vqa_encode parity).

Writes, under tests/ref/:
  encode_img0.png .. encode_img2.png   224x224 RGB test images (smooth patterns + shapes)
  encode_questions.txt                 4 questions (one truncated at 16 tokens, accents,
                                       punctuation)
  encode_expected.safetensors          what PyTorch computes from them, in float64:
      image_pooled [3, C], image_grid [3, C, 7, 7]  torchvision ResNet blocks
      text_pooled [4, H], text_seq [4, 16, H], text_mask [4, 16]  HF BertModel
      text_tokens [4, 16] (I32)  HF BertTokenizer (uncased) ids
The weights are not committed: this script asks the C test to write them
(`test_vqa_encode --write-weights DIR`, seeded), loads them with torchvision / HF names,
and the test regenerates the same files before running vqa_encode.

  python3 tools/gen_encode_refs.py --build build        # needs build/tests/test_vqa_encode

Needs numpy, pillow, torch, torchvision, transformers, safetensors.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torchvision
from PIL import Image
from safetensors.numpy import save_file
from safetensors.torch import load_file
from transformers import BertConfig, BertModel, BertTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.path.join(ROOT, "tests", "ref")
S, L = 224, 16
QUESTIONS = [
    "What color is the cube?",
    "how many circles are there in the picture",
    "Is the café's sign next to the big, red square on the left-hand side of the image or behind it?",
    "where?",
]


def make_images():
    """Smooth gradients and a few filled shapes: compress to a few KB as PNG."""
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float64)
    paths = []
    for k in range(3):
        r = 127 + 120 * np.sin(xx / (17 + 5 * k) + k)
        g = 127 + 120 * np.cos(yy / (23 - 4 * k))
        b = (xx + yy + 60 * k) % 256
        img = np.stack([r, g, b], -1)
        cy, cx, rad = 60 + 40 * k, 150 - 30 * k, 30 + 5 * k
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < rad ** 2] = [(200 * k) % 256, 40, 220 - 60 * k]
        img[20 + 10 * k:70 + 10 * k, 20:90] = [250, 250 - 80 * k, 10]
        p = os.path.join(REF, "encode_img%d.png" % k)
        Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8), "RGB").save(p, optimize=True)
        paths.append(p)
    return paths


class ScaledResNet(torchvision.models.resnet.ResNet):
    """torchvision's ResNet with base width `base` instead of 64 (the blocks, names and
    forward are torchvision's; only the channel counts scale)."""

    def __init__(self, block, layers, base):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = base, 1, 1, 64
        self.conv1 = nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, base, layers[0])
        self.layer2 = self._make_layer(block, 2 * base, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * base, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * base, layers[3], stride=2)

    def features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        grid = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return grid.mean(dim=(2, 3)), grid


def image_features(weights, paths):
    net = ScaledResNet(torchvision.models.resnet.BasicBlock, [2, 2, 2, 2], 16)
    net.load_state_dict(load_file(weights), strict=True)  # torchvision names, nothing left over
    net = net.double().eval()
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(3, 1, 1)
    xs = []
    for p in paths:
        a = np.asarray(Image.open(p).convert("RGB"), dtype=np.float64) / 255.0  # ToTensor
        xs.append((torch.from_numpy(a).permute(2, 0, 1) - mean) / std)         # Normalize
    with torch.no_grad():
        pooled, grid = net.features(torch.stack(xs))
    return pooled.numpy(), grid.numpy()


def text_features(weights):
    tok = BertTokenizer(os.path.join(REF, "bert_uncased_vocab.txt"), do_lower_case=True)
    enc = tok(QUESTIONS, padding="max_length", truncation=True, max_length=L, return_tensors="pt")
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=32, type_vocab_size=2,
                     hidden_act="gelu", layer_norm_eps=1e-12)
    model = BertModel(cfg, add_pooling_layer=True)
    sd = load_file(weights)
    res = model.load_state_dict(sd, strict=False)
    assert not res.unexpected_keys, res.unexpected_keys
    assert all("position_ids" in k or "token_type_ids" in k for k in res.missing_keys), res.missing_keys
    model = model.double().eval()
    with torch.no_grad():
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                    token_type_ids=torch.zeros_like(enc["input_ids"]))
    return (out.pooler_output.numpy(), out.last_hidden_state.numpy(),
            enc["attention_mask"].numpy().astype(np.float32), enc["input_ids"].numpy().astype(np.int32))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    paths = make_images()
    with open(os.path.join(REF, "encode_questions.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(QUESTIONS) + "\n")
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([os.path.join(a.build, "tests", "test_vqa_encode"), "--write-weights", d], check=True)
        ip, ig = image_features(os.path.join(d, "encode_resnet.safetensors"), paths)
        tp, ts, tm, tt = text_features(os.path.join(d, "encode_bert.safetensors"))
    out = {"image_pooled": ip.astype(np.float32), "image_grid": ig.astype(np.float32),
           "text_pooled": tp.astype(np.float32), "text_seq": ts.astype(np.float32),
           "text_mask": tm, "text_tokens": tt}
    save_file(out, os.path.join(REF, "encode_expected.safetensors"))
    for k, v in out.items():
        print("%-13s %-18s mean |x| %.4g" % (k, v.shape, float(np.abs(v).mean())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
