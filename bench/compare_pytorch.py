#!/usr/bin/env python3
"""compare_pytorch.py: the same fusion model as bench_throughput in PyTorch, on the same GPU,
for the ours / PyTorch ratio that bench/device_check.sh prints.

Model: torchvision resnet50 (fc removed: 2048-d pooled), Hugging Face BertModel with the
TinyBERT 4L-312D config (pooled output), and our `mul` head (src/model/fusion.h):
vi = ReLU(img_proj(img)), vq = ReLU(txt_proj(txt)), f = vi * vq,
logits = classifier.3(Dropout(ReLU(classifier.0(f)))), BCE-with-logits (sum over answers,
mean over the batch), AdamW with clipping at 1.0. bf16 autocast, channels_last images,
cudnn.benchmark on, random inputs (not zeros). Modes: (a) frozen image encoder (eval mode,
no grad), (b) everything trainable.

Prints one line per mode:  pytorch <mode> <batch> <samples/s> <step ms> <peak GiB>
Usage: python3 compare_pytorch.py [--batch 256] [--steps 10] [--warmup 3] [--mode both]
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Fusion(nn.Module):
    def __init__(self, text_hidden=312, hid=1024, answers=3129, p=0.3, frozen_image=False):
        super().__init__()
        import torchvision
        from transformers import BertConfig, BertModel

        self.image = torchvision.models.resnet50(weights=None)
        self.image.fc = nn.Identity()
        cfg = BertConfig(vocab_size=30522, hidden_size=text_hidden, num_hidden_layers=4, num_attention_heads=12,
                         intermediate_size=1200, max_position_embeddings=512, hidden_act="gelu")
        self.text = BertModel(cfg, add_pooling_layer=True)
        self.img_proj = nn.Linear(2048, hid)
        self.txt_proj = nn.Linear(text_hidden, hid)
        self.classifier = nn.Sequential(nn.Linear(hid, hid), nn.ReLU(), nn.Dropout(p), nn.Linear(hid, answers))
        self.frozen_image = frozen_image
        if frozen_image:
            for q in self.image.parameters():
                q.requires_grad_(False)

    def forward(self, images, tokens, mask):
        if self.frozen_image:
            self.image.eval()  # a frozen ResNet keeps BN in inference mode (DESIGN.md)
            with torch.no_grad():
                img = self.image(images)
        else:
            img = self.image(images)
        txt = self.text(input_ids=tokens, attention_mask=mask).pooler_output
        f = F.relu(self.img_proj(img)) * F.relu(self.txt_proj(txt))
        return self.classifier(f)


def run(mode, B, steps, warmup, S=224, L=20, A=3129):
    dev = "cuda"
    torch.manual_seed(0)
    model = Fusion(answers=A, frozen_image=(mode == "frozen")).to(dev).to(memory_format=torch.channels_last)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    images_host = (torch.rand(B, 3, S, S) * 4 - 2).pin_memory()
    images = torch.empty(B, 3, S, S, device=dev).to(memory_format=torch.channels_last)
    lens = torch.randint(6, L, (B,))
    tokens = torch.randint(1000, 21000, (B, L))
    mask = (torch.arange(L)[None, :] < lens[:, None]).long()
    tokens = (tokens * mask).to(dev)
    mask = mask.to(dev)
    targets = ((torch.rand(B, A) < 0.002).float() * 0.3 * torch.randint(1, 4, (B, A)).float()).to(dev)
    torch.cuda.reset_peak_memory_stats()
    times = []
    for it in range(warmup + steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        images.copy_(images_host, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(images, tokens, mask)
        loss = F.binary_cross_entropy_with_logits(logits.float(), targets, reduction="sum") / B
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        torch.cuda.synchronize()
        if it >= warmup:
            times.append(time.perf_counter() - t0)
    step = sum(times) / len(times)
    print(f"pytorch {mode} {B} {B / step:.1f} {step * 1000:.1f} {torch.cuda.max_memory_allocated() / 2**30:.2f}",
          flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--mode", default="both", choices=["both", "frozen", "trainable"])
    a = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = True  # as our conv path in bf16 mode (tensor cores on fp32 tensors)
    print(f"# torch {torch.__version__}, {torch.cuda.get_device_name(0)}", flush=True)
    for mode in ["frozen", "trainable"]:
        if a.mode in ("both", mode):
            run(mode, a.batch, a.steps, a.warmup)


if __name__ == "__main__":
    main()
