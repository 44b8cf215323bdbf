#!/usr/bin/env python3
"""convert_weights.py: PyTorch checkpoints -> safetensors with the names vqa_train expects.

  # torchvision ResNet (.pth state_dict, or a full pickled model):
  python3 tools/convert_weights.py resnet resnet50-0676ba61.pth resnet50.safetensors
  # Hugging Face BERT checkpoint directory (pytorch_model.bin or model.safetensors):
  python3 tools/convert_weights.py bert TinyBERT_General_4L_312D/ tinybert.safetensors

ResNet names stay torchvision's (conv1.weight, layer1.0.bn1.running_var, ...; fc.* is kept
and reported unused by the trainer, which has no ImageNet head). A DataParallel "module."
prefix is stripped. BERT names become BertModel's (embeddings.*, encoder.layer.N.*,
pooler.*): a "bert." prefix is stripped and pre-training heads (cls.*, fit_dense*) are
dropped. Everything is written as F32 (num_batches_tracked stays I64). The trainer reads
these with model.*.weights; set weights_prefix only for files converted some other way.
"""
import argparse
import os
import sys

import torch
from safetensors.torch import save_file


def load_any(path):
    if os.path.isdir(path):
        st = os.path.join(path, "model.safetensors")
        if os.path.exists(st):
            from safetensors.torch import load_file
            return load_file(st)
        path = os.path.join(path, "pytorch_model.bin")
    obj = torch.load(path, map_location="cpu", weights_only=False)
    if hasattr(obj, "state_dict"):
        obj = obj.state_dict()
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    return obj


def convert(kind, sd):
    out, dropped = {}, []
    for k, v in sd.items():
        if not torch.is_tensor(v):
            continue
        if k.startswith("module."):
            k = k[len("module."):]
        if kind == "bert":
            if k.startswith("bert."):
                k = k[len("bert."):]
            if not k.startswith(("embeddings.", "encoder.", "pooler.")) or k.endswith("position_ids"):
                dropped.append(k)
                continue
        v = v.detach().contiguous()
        out[k] = v if v.dtype == torch.int64 else v.float()
    return out, dropped


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kind", choices=["resnet", "bert"])
    ap.add_argument("src")
    ap.add_argument("dst")
    a = ap.parse_args()
    out, dropped = convert(a.kind, load_any(a.src))
    if not out:
        sys.exit("%s: no tensors found" % a.src)
    save_file(out, a.dst, metadata={"source": os.path.basename(a.src.rstrip("/")), "kind": a.kind})
    n = sum(t.numel() for k, t in out.items() if t.dtype != torch.int64)
    print("%s: %d tensors, %d values%s" % (a.dst, len(out), n,
          "; dropped %d (%s)" % (len(dropped), ", ".join(dropped[:5])) if dropped else ""))


if __name__ == "__main__":
    main()
