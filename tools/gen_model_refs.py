#!/usr/bin/env python3
"""gen_model_refs.py: PyTorch references for the model parity tests (tests/ref/model_*.safetensors).

The C tests own the cases: `test_resnet --write-inputs DIR` (and test_fusion, test_vqa_model)
write, per case, the seeded weights the C side generated (model_<case>_weights.safetensors,
never committed) and the inputs + output gradients + a description of the case in the
metadata (model_<case>_in.safetensors). This script rebuilds each model in PyTorch --
torchvision's own ResNet blocks, and FusionHead below, which is the head written out in
src/model/fusion.h -- loads those weights with strict name matching, runs it in float64,
and stores only outputs ("out.*"), gradients of every parameter and input ("grad.*",
loss = sum(out * dout)) and BN running statistics after a train-mode forward ("buf.*").

Usage:
  pip install torch torchvision safetensors numpy
  python3 tools/gen_model_refs.py --build build [--out tests/ref] [--only CASE ...]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.numpy import save_file
from safetensors.torch import load_file
from safetensors import safe_open
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1

ARCH = {18: (BasicBlock, [2, 2, 2, 2]), 34: (BasicBlock, [3, 4, 6, 3]),
        50: (Bottleneck, [3, 4, 6, 3]), 101: (Bottleneck, [3, 4, 23, 3])}


class TVResNet(nn.Module):
    """torchvision.models.ResNet with a base-width knob (64 * width instead of 64); the
    blocks are torchvision's own BasicBlock / Bottleneck, the names are torchvision's."""

    def __init__(self, depth, width, fc_classes):
        super().__init__()
        block, layers = ARCH[depth]
        base = int(64 * width + 0.5)
        self.inplanes = base
        self.conv1 = nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, base, layers[0])
        self.layer2 = self._make_layer(block, base * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, base * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, base * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        if fc_classes:
            self.fc = nn.Linear(base * 8 * block.expansion, fc_classes)

    def _make_layer(self, block, planes, blocks, stride=1):  # as torchvision ResNet._make_layer
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))
        return nn.Sequential(*layers)


def resnet_features(m, x):
    """grid [N, C, h, w], pooled [N, C], logits or None -- torchvision's forward, split."""
    x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    grid = m.layer4(m.layer3(m.layer2(m.layer1(x))))
    pooled = torch.flatten(m.avgpool(grid), 1)
    logits = m.fc(pooled) if hasattr(m, "fc") else None
    return grid, pooled, logits


def make_resnet(depth, width, fc_classes):
    import torchvision
    if width == 1.0 and fc_classes:
        return getattr(torchvision.models, "resnet%d" % depth)(num_classes=fc_classes)
    return TVResNet(depth, width, fc_classes)


class FusionParts(nn.Module):
    def __init__(self, ftype, img_dim, txt_dim, hidden):
        super().__init__()
        self.img_proj = nn.Linear(img_dim, hidden)
        self.txt_proj = nn.Linear(txt_dim, hidden)
        if ftype == "attention":
            self.att = nn.Linear(hidden, 1)


class FusionHead(nn.Module):
    """src/model/fusion.h, line for line."""

    def __init__(self, ftype, img_dim, txt_dim, hidden, answers, dropout, att_scale=1.0):
        super().__init__()
        self.ftype = ftype
        self.att_scale = att_scale                            # model.fusion.att_scale (k)
        self.fusion = FusionParts(ftype, img_dim, txt_dim, hidden)
        fdim = 2 * hidden if ftype == "concat" else hidden
        self.classifier = nn.Sequential(nn.Linear(fdim, hidden), nn.ReLU(), nn.Dropout(dropout),
                                        nn.Linear(hidden, answers))

    def head(self, img, txt):
        f = self.fusion
        vq = F.relu(f.txt_proj(txt))                          # [B, hid]
        if self.ftype == "attention":
            cells = img.flatten(2).transpose(1, 2)            # [B, Ci, G] -> [B, G, Ci]
            V = F.relu(f.img_proj(cells))                     # [B, G, hid]
            s = self.att_scale * f.att(V * vq[:, None, :]).squeeze(-1)  # [B, G]
            a = torch.softmax(s, dim=1)
            v = (a[:, :, None] * V).sum(1)                    # [B, hid]
            fused = v * vq
        else:
            vi = F.relu(f.img_proj(img))
            fused = torch.cat([vi, vq], 1) if self.ftype == "concat" else vi * vq
        return self.classifier(fused)


class ResnetFusion(FusionHead):
    def __init__(self, depth, width, ftype, txt_dim, hidden, answers, dropout):
        block, _ = ARCH[depth]
        img_dim = int(64 * width + 0.5) * 8 * block.expansion
        super().__init__(ftype, img_dim, txt_dim, hidden, answers, dropout)
        self.image_encoder = TVResNet(depth, width, 0)


def load_strict(model, path):
    sd = {k: v.double() if v.is_floating_point() else v for k, v in load_file(path).items()}
    model.load_state_dict(sd, strict=True)  # raises on any missing / unexpected / mis-shaped name


def run_case(in_path, out_dir):
    with safe_open(in_path, "pt") as f:
        meta = f.metadata()
        inp = {k: f.get_tensor(k).double() for k in f.keys()}
    case = os.path.basename(in_path)[len("model_"):-len("_in.safetensors")]
    kind = meta["kind"]
    train = meta.get("train", "1") == "1"
    out, grads_inputs = {}, {}
    if kind == "resnet":
        fc = int(meta["fc"])
        m = make_resnet(int(meta["depth"]), float(meta["width"]), fc).double()
        load_strict(m, meta["weights"])
        m.train(train)
        x = inp["x"]
        with torch.set_grad_enabled(train):
            grid, pooled, logits = resnet_features(m, x)
        out["out.pooled"] = pooled
        if grid.numel() <= 65536:  # keep the committed files small (full ResNet-50: pooled + logits)
            out["out.grid"] = grid
        if logits is not None:
            out["out.logits"] = logits
        if train:
            loss = (grid * inp["dout.grid"]).sum() + (pooled * inp["dout.pooled"]).sum()
            if logits is not None:
                loss = loss + (logits * inp["dout.logits"]).sum()
            loss.backward()
    elif kind in ("fusion", "resnet_fusion"):
        ftype, hid, A = meta["type"], int(meta["hidden"]), int(meta["answers"])
        txt = inp["txt"].clone().requires_grad_(True)
        if kind == "fusion":
            m = FusionHead(ftype, int(meta["img_dim"]), txt.shape[1], hid, A, 0.0).double()
            img = inp["img"].clone().requires_grad_(True)
            grads_inputs["grad.input.img"] = img
        else:
            m = ResnetFusion(int(meta["depth"]), float(meta["width"]), ftype, txt.shape[1], hid, A, 0.0).double()
        load_strict(m, meta["weights"])
        m.train(train)
        if kind == "resnet_fusion":
            grid, pooled, _ = resnet_features(m.image_encoder, inp["x"])
            img = grid if ftype == "attention" else pooled
        logits = m.head(img, txt)
        out["out.logits"] = logits
        (logits * inp["dout.logits"]).sum().backward()
        grads_inputs["grad.input.txt"] = txt
    else:
        raise SystemExit("%s: unknown kind %r" % (in_path, kind))

    res = {k: v.detach().float().numpy() for k, v in out.items()}
    if train:
        for n, p in m.named_parameters():
            if p.grad is not None:
                res["grad." + n] = p.grad.float().numpy()
        for n, t in grads_inputs.items():
            res[n] = t.grad.float().numpy()
        for n, b in m.named_buffers():
            if n.endswith("running_mean") or n.endswith("running_var"):
                res["buf." + n] = b.float().numpy()
    res = {k: np.ascontiguousarray(v) for k, v in res.items()}
    path = os.path.join(out_dir, "model_%s.safetensors" % case)
    save_file(res, path, metadata={k: v for k, v in meta.items() if k != "weights"})
    size = os.path.getsize(path)
    print("%-40s %3d tensors %8.1f KB" % (path, len(res), size / 1024))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True, help="CMake build dir with the test programs")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
    ap.add_argument("--tests", nargs="*", default=["test_resnet", "test_fusion", "test_vqa_model"])
    ap.add_argument("--only", nargs="*", help="case names to regenerate")
    args = ap.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        for t in args.tests:
            exe = os.path.join(args.build, "tests", t)
            if not os.path.exists(exe):
                print("skip %s (not built)" % exe, file=sys.stderr)
                continue
            subprocess.run([exe, "--write-inputs", tmp], check=True)
        for name in sorted(os.listdir(tmp)):
            if not name.endswith("_in.safetensors"):
                continue
            case = name[len("model_"):-len("_in.safetensors")]
            if args.only and case not in args.only:
                continue
            run_case(os.path.join(tmp, name), args.out)


if __name__ == "__main__":
    main()
