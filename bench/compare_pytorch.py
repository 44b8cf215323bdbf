#!/usr/bin/env python3
"""compare_pytorch.py: our models in PyTorch, for the ours / PyTorch ratios of
bench/device_check.sh (--device cuda, the default) and bench/compare_cpu.sh (--device cpu).

--device cuda: the same fusion model as bench_throughput, on the same GPU.
Model: torchvision resnet50 (fc removed: 2048-d pooled), Hugging Face BertModel with the
TinyBERT 4L-312D config (pooled output), and our `mul` head (src/model/fusion.h):
vi = ReLU(img_proj(img)), vq = ReLU(txt_proj(txt)), f = vi * vq,
logits = classifier.3(Dropout(ReLU(classifier.0(f)))), BCE-with-logits (sum over answers,
mean over the batch), AdamW with clipping at 1.0. bf16 autocast, channels_last images,
cudnn.benchmark on, random inputs (not zeros). Modes: (a) frozen image encoder (eval mode,
no grad), (b) everything trainable.
Prints one line per mode:  pytorch <mode> <batch> <samples/s> <step ms> <peak GiB>
Usage: python3 compare_pytorch.py [--batch 256] [--steps 10] [--warmup 3] [--mode both]

--device cpu: fp32, oneDNN (mkldnn) as PyTorch enables it by default, the models of
bench/compare_cpu.sh, layer for layer and parameter for parameter:
  demo: configs/demo.yaml -- ResNet-18 x0.5 cut after layer2 (8x8 grid of 64 channels at
        64 px), BERT 2L-64H (4 heads, ffn 128, 32 positions, the synthetic vocabulary,
        dropout 0) with the mask-weighted mean of the last layer's tokens (the pooler exists
        but is frozen, as ours), attention fusion (hidden 256, scores x5, prior bias),
        batch 64, L 16, trainable;
  r50:  bench/cpu_r50_tinybert.yaml -- ResNet-50 (pooled) + TinyBERT 4L-312D sizes with the
        synthetic vocabulary (pooler output, dropout 0.1), `mul` fusion (hidden 1024, dropout
        0.3), 224 px, batch 16, L 20; image encoder trainable and frozen (eval mode, no grad).
  Timed: one training step = zero_grad, forward, BCE loss, backward, clip at 1.0, AdamW step
  (weight decay on weights and embeddings only, as ours), LR schedule step; mean over
  --steps steps after --warmup steps. Not timed: the random inputs (made once, before the
  timing), any data loading, metrics or logging (ours times its data step: see
  bench/compare_cpu.sh).
Prints the machine, then one line per (model, mode, threads):
  pytorch-cpu <model> <mode> threads <N> batch <B> <samples/s> samples/s <step ms> ms (load, trainable)
Usage: python3 compare_pytorch.py --device cpu [--models demo,r50] [--mode both]
       [--threads 1,2] [--steps 10] [--warmup 3] [--expect-params N] [--expect-params-r50 N]
       [--vocab 43] [--demo-answers 15] [--r50-answers 17]
"""
import argparse
import math
import os
import platform
import sys
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


# ---------------------------------------------------------------- --device cpu

class CpuResnet(nn.Module):
    """torchvision ResNet v1.5 (src/model/resnet.h): base width round(64 * width), cut after
    layer<stages>; torchvision's own blocks and names; returns the grid [B, C, h, w]."""

    def __init__(self, depth, width, stages):
        super().__init__()
        from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1
        block, layers = {18: (BasicBlock, [2, 2, 2, 2]), 34: (BasicBlock, [3, 4, 6, 3]),
                         50: (Bottleneck, [3, 4, 6, 3]), 101: (Bottleneck, [3, 4, 23, 3])}[depth]
        base = int(64 * width + 0.5)
        self.conv1 = nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = base
        self.stages = []
        for si in range(stages):  # as torchvision ResNet._make_layer
            planes, stride = base << si, 1 if si == 0 else 2
            ds = None
            if stride != 1 or inplanes != planes * block.expansion:
                ds = nn.Sequential(conv1x1(inplanes, planes * block.expansion, stride),
                                   nn.BatchNorm2d(planes * block.expansion))
            blocks = [block(inplanes, planes, stride, ds)]
            inplanes = planes * block.expansion
            blocks += [block(inplanes, planes) for _ in range(1, layers[si])]
            setattr(self, "layer%d" % (si + 1), nn.Sequential(*blocks))
            self.stages.append("layer%d" % (si + 1))
        self.out_channels = inplanes

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for n in self.stages:
            x = getattr(self, n)(x)
        return x


class CpuVqa(nn.Module):
    """image_encoder + text_encoder + fusion head, as src/model/vqa_model.c assembles them
    (the head is src/model/fusion.h written out, as tools/gen_model_refs.py FusionHead)."""

    def __init__(self, m, frozen_image):
        super().__init__()
        from transformers import BertConfig, BertModel
        self.image_encoder = CpuResnet(m["depth"], m["width"], m["stages"])
        self.grid = m["fusion"] == "attention"
        self.pool = m["pool"]
        cfg = BertConfig(vocab_size=m["vocab"], hidden_size=m["hidden"], num_hidden_layers=m["layers"],
                         num_attention_heads=m["heads"], intermediate_size=m["ffn"],
                         max_position_embeddings=m["max_positions"], type_vocab_size=2, hidden_act="gelu",
                         hidden_dropout_prob=m["text_dropout"], attention_probs_dropout_prob=m["text_dropout"],
                         layer_norm_eps=1e-12, pad_token_id=0)
        self.text_encoder = BertModel(cfg, add_pooling_layer=True)
        hid, A = m["fusion_hidden"], m["answers"]
        self.fusion = nn.Module()
        self.fusion.img_proj = nn.Linear(self.image_encoder.out_channels, hid)
        self.fusion.txt_proj = nn.Linear(m["hidden"], hid)
        if self.grid:
            self.fusion.att = nn.Linear(hid, 1)
        self.att_scale = m.get("att_scale", 1.0)
        self.classifier = nn.Sequential(nn.Linear(hid, hid), nn.ReLU(), nn.Dropout(m["fusion_dropout"]),
                                        nn.Linear(hid, A))
        if m.get("prior_bias") and A > 1:
            nn.init.constant_(self.classifier[3].bias, -math.log(A - 1))
        if self.pool == "mean":  # the pooler is not used: frozen, as ours (vqa_model.c)
            for q in self.text_encoder.pooler.parameters():
                q.requires_grad_(False)
        self.frozen_image = frozen_image
        if frozen_image:
            for q in self.image_encoder.parameters():
                q.requires_grad_(False)

    def forward(self, images, tokens, mask):
        if self.frozen_image:
            self.image_encoder.eval()  # a frozen ResNet keeps BN in inference mode (DESIGN.md)
            with torch.no_grad():
                grid = self.image_encoder(images)
        else:
            grid = self.image_encoder(images)
        out = self.text_encoder(input_ids=tokens, attention_mask=mask)
        if self.pool == "mean":  # mask-weighted mean of the last layer's tokens
            w = mask.float() / mask.float().sum(1, keepdim=True)
            txt = (out.last_hidden_state * w[:, :, None]).sum(1)
        else:
            txt = out.pooler_output
        f = self.fusion
        vq = F.relu(f.txt_proj(txt))
        if self.grid:
            V = F.relu(f.img_proj(grid.flatten(2).transpose(1, 2)))  # [B, G, hid]
            s = self.att_scale * f.att(V * vq[:, None, :]).squeeze(-1)  # [B, G]
            a = torch.softmax(s, dim=1)
            fused = (a[:, :, None] * V).sum(1) * vq
        else:
            fused = F.relu(f.img_proj(torch.flatten(F.adaptive_avg_pool2d(grid, 1), 1))) * vq
        return self.classifier(fused)


# configs/demo.yaml and bench/cpu_r50_tinybert.yaml (answers and vocab: those of the synthetic data)
CPU_MODELS = {
    "demo": dict(depth=18, width=0.5, stages=2, image=64, layers=2, hidden=64, heads=4, ffn=128,
                 max_positions=32, text_dropout=0.0, pool="mean", fusion="attention", fusion_hidden=256,
                 fusion_dropout=0.0, att_scale=5.0, prior_bias=True, batch=64, L=16, lr=1e-3, warmup=50,
                 total=1000, modes=["trainable"]),
    "r50": dict(depth=50, width=1.0, stages=4, image=224, layers=4, hidden=312, heads=12, ffn=1200,
                max_positions=512, text_dropout=0.1, pool="cls", fusion="mul", fusion_hidden=1024,
                fusion_dropout=0.3, prior_bias=False, batch=16, L=20, lr=1e-4, warmup=1, total=125,
                modes=["trainable", "frozen"]),
}


def count_params(model):
    total = sum(p.numel() for p in model.parameters())
    return total, sum(p.numel() for p in model.parameters() if p.requires_grad)


def cpu_run(name, m, mode, threads, steps, warmup):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = CpuVqa(m, frozen_image=(mode == "frozen"))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    # ours: weight decay on weights and embeddings, none on biases and norms (params.c ps_decay)
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.01},
                             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}], lr=m["lr"])
    wu, total = m["warmup"], m["total"]  # linear warm-up, then cosine to 0 (optim.h)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / wu if s < wu else 0.5 * (1 + math.cos(math.pi * min(1.0, (s - wu) / max(1, total - wu)))))
    B, S, L, A = m["batch"], m["image"], m["L"], m["answers"]
    images = torch.rand(B, 3, S, S) * 4 - 2
    lens = torch.randint(L // 2, L - 1, (B,))
    mask = (torch.arange(L)[None, :] < lens[:, None]).long()
    tokens = torch.randint(1, m["vocab"], (B, L)) * mask
    targets = (torch.rand(B, A) < 0.1).float() * 0.3 * torch.randint(1, 4, (B, A)).float()
    times = []
    for it in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits = model(images, tokens, mask)
        loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / B
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if it >= warmup:
            times.append(time.perf_counter() - t0)
    step = sum(times) / len(times)
    print(f"pytorch-cpu {name} {mode} threads {threads} batch {B} {B / step:.2f} samples/s {step * 1000:.1f} ms "
          f"(load {os.getloadavg()[0]:.2f}; {sum(p.numel() for p in params)} trainable parameters)", flush=True)


def cpu_model_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_main(a):
    import torchvision
    import transformers
    print(f"# torch {torch.__version__}, torchvision {torchvision.__version__}, transformers {transformers.__version__}; "
          f"mkldnn available {torch.backends.mkldnn.is_available()}, enabled {torch.backends.mkldnn.enabled}; fp32", flush=True)
    la = os.getloadavg()
    print(f"# machine: {cpu_model_name()}, {os.cpu_count()} CPUs; load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}",
          flush=True)
    threads = [int(t) for t in a.threads.split(",") if t]
    failed = 0
    for name in [n for n in a.models.split(",") if n]:
        m = dict(CPU_MODELS[name], vocab=a.vocab, answers=a.demo_answers if name == "demo" else a.r50_answers)
        total, trainable = count_params(CpuVqa(m, frozen_image=False))
        expect = a.expect_params if name == "demo" else a.expect_params_r50
        verdict = ""
        if expect is not None:
            verdict = "; ours %d: %s" % (expect, "same" if expect == total else "DIFFERENT")
            failed |= expect != total
        print(f"# params {name}: pytorch {total} ({trainable} trainable){verdict}", flush=True)
        if expect is not None and expect != total:
            continue
        for mode in m["modes"]:
            if a.mode not in ("both", mode):
                continue
            for n in threads:
                cpu_run(name, m, mode, n, a.steps, a.warmup)
    if failed:
        print("error: the PyTorch parameter count differs from ours (--expect-params)", file=sys.stderr)
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--batch", type=int, default=256, help="cuda only (cpu: the models' own batch)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--mode", default="both", choices=["both", "frozen", "trainable"])
    ap.add_argument("--models", default="demo,r50", help="cpu: demo, r50 or both")
    ap.add_argument("--threads", default="1,2", help="cpu: torch.set_num_threads values")
    ap.add_argument("--vocab", type=int, default=43, help="cpu: text vocabulary (data/synth/vocab.txt: 43)")
    ap.add_argument("--demo-answers", type=int, default=15, help="cpu: demo answers (data/synth: 15)")
    ap.add_argument("--r50-answers", type=int, default=17, help="cpu: r50 answers (data/synth224: 17)")
    ap.add_argument("--expect-params", type=int, default=None, help="cpu: our demo model's parameter count")
    ap.add_argument("--expect-params-r50", type=int, default=None, help="cpu: our r50 model's parameter count")
    a = ap.parse_args()
    if a.steps < 1 or a.warmup < 0:
        ap.error("--steps must be >= 1 and --warmup >= 0")
    if a.device == "cpu":
        cpu_main(a)
        return
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = True  # as our conv path in bf16 mode (tensor cores on fp32 tensors)
    print(f"# torch {torch.__version__}, {torch.cuda.get_device_name(0)}", flush=True)
    for mode in ["frozen", "trainable"]:
        if a.mode in ("both", mode):
            run(mode, a.batch, a.steps, a.warmup)

if __name__ == "__main__":
    main()
