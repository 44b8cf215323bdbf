#!/usr/bin/env python3
"""gen_bert_refs.py: Hugging Face references for the BERT parity tests (tests/ref/bert_*.safetensors).

The C test owns the cases: `test_bert --write-inputs DIR` writes, per case, the seeded
weights the C side generated (bert_<case>_weights.safetensors, HF names, never committed:
the TinyBERT one is 57 MB) and the inputs -- token ids, token types, attention mask with
padding, and the output gradients dsequence / dpooled -- with the config in the metadata
(bert_<case>_in.safetensors). This script builds transformers' own `BertModel` with that
config (eager attention, GELU erf, LayerNorm eps from the metadata), loads the weights with
strict name matching, runs it in eval mode in float64, and stores only the inputs and the
outputs: "input.*", "out.sequence" (last_hidden_state), "out.pooled" (pooler_output) and,
for cases with grads=1, "grad.<name>" of every parameter for the scalar loss
sum(sequence * dsequence) + sum(pooled * dpooled).

Usage:
  pip install torch transformers safetensors numpy
  python3 tools/gen_bert_refs.py --build build [--out tests/ref] [--only CASE ...]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import save_file
from safetensors.torch import load_file
from transformers import BertConfig, BertModel


def run_case(in_path, out_dir):
    with safe_open(in_path, "pt") as f:
        meta = f.metadata()
        inp = {k: f.get_tensor(k) for k in f.keys()}
    case = os.path.basename(in_path)[len("bert_"):-len("_in.safetensors")]
    cfg = BertConfig(
        vocab_size=int(meta["vocab"]), hidden_size=int(meta["hidden"]),
        num_hidden_layers=int(meta["layers"]), num_attention_heads=int(meta["heads"]),
        intermediate_size=int(meta["ffn"]), hidden_act="gelu",
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,  # eval mode: unused
        max_position_embeddings=int(meta["positions"]), type_vocab_size=int(meta["types"]),
        layer_norm_eps=float(meta["eps"]), pad_token_id=int(meta["pad_token_id"]))
    cfg._attn_implementation = "eager"
    m = BertModel(cfg, add_pooling_layer=True).double()
    sd = {k: v.double() for k, v in load_file(meta["weights"]).items()}
    m.load_state_dict(sd, strict=True)  # raises on any missing / unexpected / mis-shaped name
    m.eval()
    grads = meta.get("grads", "0") == "1"
    ids = inp["input.tokens"].long()
    tt = inp["input.token_types"].long()
    mask = inp["input.mask"].double()
    with torch.set_grad_enabled(grads):
        o = m(input_ids=ids, token_type_ids=tt, attention_mask=mask)
    seq, pooled = o.last_hidden_state, o.pooler_output
    res = {k: v.numpy() for k, v in inp.items()}
    res["out.sequence"] = seq.detach().float().numpy()
    res["out.pooled"] = pooled.detach().float().numpy()
    if grads:
        loss = (seq * inp["input.dsequence"].double()).sum() + (pooled * inp["input.dpooled"].double()).sum()
        loss.backward()
        for n, p in m.named_parameters():
            res["grad." + n] = (p.grad if p.grad is not None else torch.zeros_like(p)).float().numpy()
    res = {k: np.ascontiguousarray(v) for k, v in res.items()}
    path = os.path.join(out_dir, "bert_%s.safetensors" % case)
    save_file(res, path, metadata={k: v for k, v in meta.items() if k != "weights"})
    print("%-40s %3d tensors %8.1f KB" % (path, len(res), os.path.getsize(path) / 1024))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True, help="CMake build dir with tests/test_bert")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
    ap.add_argument("--only", nargs="*", help="case names to regenerate")
    args = ap.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(args.build, "tests", "test_bert")
        if not os.path.exists(exe):
            sys.exit("%s is not built" % exe)
        subprocess.run([exe, "--write-inputs", tmp], check=True)
        for name in sorted(os.listdir(tmp)):
            if not name.endswith("_in.safetensors"):
                continue
            case = name[len("bert_"):-len("_in.safetensors")]
            if args.only and case not in args.only:
                continue
            run_case(os.path.join(tmp, name), args.out)


if __name__ == "__main__":
    main()
