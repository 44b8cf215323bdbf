#!/usr/bin/env python3
"""Peer numbers for bench/tokenizer.c: Hugging Face's Python BertTokenizer (the reference
the C tokenizer matches) and the Rust-backed fast tokenizer, one thread, on the same
questions. Called by bench_tokenizer as
    python3 tools/bench_tokenizer_hf.py CASES OURS_SHORT_QPS OURS_ALL_QPS
and prints rows of the same table (ratio = ours / peer)."""
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # keep the Rust tokenizer on one thread
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_tokenizer_refs as g  # noqa: E402


def load(path, ascii_short):
    qs = []
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            esc = line.split("\t", 1)[0]
            raw = bytearray()
            i = 0
            while i < len(esc):
                if esc.startswith("\\x", i):
                    raw.append(int(esc[i + 2:i + 4], 16))
                    i += 4
                else:
                    raw += esc[i].encode("utf-8")
                    i += 1
            text = raw.decode("utf-8", "replace")
            if ascii_short and not (text and len(raw) <= 80
                                    and all(32 <= ord(c) < 127 for c in text)):
                continue
            qs.append(text)
    return qs


def rate(fn, qs, budget=1.0):
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < budget:
        for q in qs:
            fn(q)
        n += len(qs)
    return n / (time.perf_counter() - t0)


def main():
    cases, ours_s, ours_a = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    slow = g.load_tokenizer()
    short, allq = load(cases, True), load(cases, False)
    rows = [("HF Python BertTokenizer, short", len(short), ours_s,
             rate(lambda q: slow._tokenize(q, split_special_tokens=True), short)),
            ("HF Python BertTokenizer, all", len(allq), ours_a,
             rate(lambda q: slow._tokenize(q, split_special_tokens=True), allq))]
    try:
        from tokenizers import Tokenizer  # Rust; the vocab-only WordPiece pipeline of BERT
        from tokenizers.models import WordPiece
        from tokenizers.normalizers import BertNormalizer
        from tokenizers.pre_tokenizers import BertPreTokenizer
        fast = Tokenizer(WordPiece.from_file(g.VOCAB, unk_token="[UNK]"))
        fast.normalizer = BertNormalizer(lowercase=True)
        fast.pre_tokenizer = BertPreTokenizer()
        rows.append(("HF Rust tokenizers (1 thread), short", len(short), ours_s,
                     rate(lambda q: fast.encode(q, add_special_tokens=False), short)))
        rows.append(("HF Rust tokenizers (1 thread), all", len(allq), ours_a,
                     rate(lambda q: fast.encode(q, add_special_tokens=False), allq)))
    except ImportError:
        pass
    print("%-34s %7s %14s %14s %7s" % ("peer (same questions)", "n", "ours q/s", "peer q/s", "ratio"))
    for name, n, ours, peer in rows:
        print("%-34s %7d %14.0f %14.0f %7.1f" % (name, n, ours, peer, ours / peer))


if __name__ == "__main__":
    main()
