#!/usr/bin/env python3
"""gen_metric_refs.py: reference files for tests/test_answers.c, tests/test_vqa_metric.c and
tests/test_vqa_eval.sh, produced by a port of the official VQA evaluation
(GT-Vision-Lab/VQA PythonEvaluationTools/vqaEvaluation/vqaEval.py, March 2021) that is
independent of the C code. Standard library only.

The port follows the official Python 2 tool: its regular expressions are compiled without
re.UNICODE, so \\d means ASCII 0-9 (re.ASCII here); str.lower/strip/split are Python 3's
Unicode versions (the C code documents what it covers beyond ASCII); the period regex is
applied with count=32 because the tool passes re.UNICODE (== 32) as re.sub's count.

Writes into tests/ref/data/:
  metric_questions.json, metric_annotations.json, metric_results.json  the crafted set
  metric_expected.json   overall / per answer type / per question type / per question
  answer_norm_cases.json [[raw, cleaned, normalized], ...] random answers (fixed seed)

Usage: python3 tools/gen_metric_refs.py [out_dir]
"""
import json
import os
import random
import re
import sys

# ---- the official normalization (behaviour reproduced, Python 3) ----

CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's",
    "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll",
    "let's": "let's", "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't", "mustve": "must've",
    "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't",
    "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't",
    "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
    "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're",
    "theres": "there's", "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've",
    "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't",
    "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll",
    "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
    "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",
}
assert len(CONTRACTIONS) == 120
NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
           "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = ["a", "an", "the"]
PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)", re.ASCII)
COMMA_STRIP = re.compile(r"(\d)(,)(\d)", re.ASCII)
PUNCT = [";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",",
         "?", "!"]
assert len(PUNCT) == 21


def clean(s):
    return s.replace("\n", " ").replace("\t", " ").strip()


def process_punctuation(in_text):
    out = in_text
    for p in PUNCT:
        if (p + " " in in_text or " " + p in in_text) or COMMA_STRIP.search(in_text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return PERIOD_STRIP.sub("", out, 32)  # the official passes re.UNICODE (32) as count


def process_digit_article(in_text):
    out = []
    for word in in_text.lower().split():
        word = NUMBERS.get(word, word)
        if word not in ARTICLES:
            out.append(word)
    out = [CONTRACTIONS.get(w, w) for w in out]
    return " ".join(out)


def normalize(s):
    return process_digit_article(process_punctuation(s))


def question_accuracy(gt_answers, pred):
    """gt_answers: list of answer records (dicts with distinct answer_id)."""
    gts = [dict(a) for a in gt_answers]
    for a in gts:
        a["answer"] = clean(a["answer"])
    res = clean(pred)
    if len(set(a["answer"] for a in gts)) > 1:
        for a in gts:
            a["answer"] = normalize(a["answer"])
        res = normalize(res)
    accs = []
    for g in gts:
        others = [x for x in gts if x != g]
        matching = [x for x in others if x["answer"] == res]
        accs.append(min(1, float(len(matching)) / 3))
    return float(sum(accs)) / len(accs)


# ---- the crafted set ----

def ten(*pairs):
    """ten(("red", 3), ("blue", 7)) -> 10 answer strings."""
    out = []
    for a, k in pairs:
        out += [a] * k
    assert len(out) == 10, out
    return out


# (question_type, answer_type, multiple_choice_answer, 10 answers, prediction, why)
CASES = [
    ("is the", "yes/no", "yes", ten(("yes", 10)), "yes", "unanimous exact match"),
    ("is the", "yes/no", "yes", ten(("yes", 10)), "Yes", "unanimous: case-sensitive, no normalization"),
    ("is the", "yes/no", "no", ten(("no", 9), ("yes", 1)), "yes", "k=1 -> 0.3"),
    ("is the", "yes/no", "no", ten(("no", 8), ("yes", 2)), "yes", "k=2 -> 0.6"),
    ("is the", "yes/no", "yes", ten(("yes", 7), ("no", 3)), "no", "k=3 -> 0.9"),
    ("is the", "yes/no", "yes", ten(("yes", 6), ("no", 4)), "no", "k=4 -> 1.0"),
    ("how many", "number", "2", ten(("2", 5), ("two", 5)), "2", "number words only when humans disagree"),
    ("how many", "number", "two", ten(("two", 10)), "2", "unanimous 'two' vs '2': exact -> 0"),
    ("how many", "number", "1000", ten(("1,000", 4), ("1000", 6)), "1000", "digit,digit: commas deleted"),
    ("how many", "number", "3", ten(("3", 9), ("three", 1)), "Three.", "lower + period + number word"),
    ("what color is the", "other", "red", ten(("red", 10)), "  red\n", "cleaning runs before the test"),
    ("what color is the", "other", "red", ten(("Red.", 10)), "red", "unanimous 'Red.' is compared raw"),
    ("what color is the", "other", "red", ten(("red", 3), ("Red", 2), ("blue", 5)), "RED",
     "normalized answers merge: red x5"),
    ("what color is the", "other", "dog", ten(("dog", 3), ("the dog", 1), ("cat", 6)), "a dog", "articles"),
    ("what is the", "other", "don't know", ten(("dont know", 2), ("don't know", 1), ("no", 7)), "dont know",
     "contractions"),
    ("what is the", "other", "red car", ten(("red\tcar", 2), ("red-car", 1), ("car", 7)), "red car",
     "tab -> space; '-' -> space"),
    ("what is the", "other", "i'm", ten(("Im", 2), ("i'm", 2), ("x", 6)), "i'm",
     "capitalised contraction keys never match"),
    ("what is the", "other", "yes", ten(("yes", 2), ("no", 8)), "maybe", "no match -> 0"),
    ("what is the", "other", "red", ten(("red\r", 2), ("re\rd", 1), ("no", 7)), "red",
     "'\\r' stripped at the end, kept inside"),
    ("what is the", "other", "t-shirt", ten(("t-shirt", 3), ("t shirt", 3), ("tshirt", 4)), "t - shirt",
     "' -' occurs: '-' deleted"),
]


def build(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    questions, annotations, results, per_q = [], [], [], []
    acc_q, acc_at, acc_qt = [], {}, {}
    for i, (qt, at, mc, answers, pred, why) in enumerate(CASES):
        qid, iid = 1000 + i, 500 + i // 2
        questions.append({"image_id": iid, "question": "Q%d: %s?" % (i, why), "question_id": qid})
        recs = [{"answer": a, "answer_confidence": "yes", "answer_id": j + 1} for j, a in enumerate(answers)]
        annotations.append({"question_type": qt, "multiple_choice_answer": mc, "answers": recs,
                            "image_id": iid, "answer_type": at, "question_id": qid})
        results.append({"question_id": qid, "answer": pred})
        a = question_accuracy(recs, pred)
        acc_q.append(a)
        acc_at.setdefault(at, []).append(a)
        acc_qt.setdefault(qt, []).append(a)
        per_q.append({"question_id": qid, "accuracy": a})
    qfile = {"info": {"description": "crafted VQA metric cases"}, "task_type": "Open-Ended", "data_type": "mscoco",
             "license": {"name": "n/a"}, "data_subtype": "val2014", "questions": questions}
    afile = {"info": {"description": "crafted VQA metric cases"}, "license": {"name": "n/a"},
             "data_subtype": "val2014", "annotations": annotations}
    mean = lambda v: 100.0 * float(sum(v)) / len(v)
    expected = {
        "overall": round(mean(acc_q), 2),
        "perAnswerType": {k: round(mean(v), 2) for k, v in sorted(acc_at.items())},
        "perQuestionType": {k: round(mean(v), 2) for k, v in sorted(acc_qt.items())},
        "unrounded": {"overall": mean(acc_q), "perAnswerType": {k: mean(v) for k, v in sorted(acc_at.items())}},
        "per_question": per_q,
    }
    for name, obj in [("metric_questions.json", qfile), ("metric_annotations.json", afile),
                      ("metric_results.json", results), ("metric_expected.json", expected)]:
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1, ensure_ascii=False)
            f.write("\n")


# ---- random normalization cases ----

TOKENS = ["a", "an", "the", "The", "A", "one", "Two", "ten", "none", "zero", "eleven", "dont", "Dont", "isnt",
          "whats", "Im", "im", "ive", "let's", "somebody'd", "yall'll", "oclock", "red", "Red", "É", "ÀB",
          "ΣΑΣ".lower(), "ДОМ", "Ÿ", "ĀĂ", "3", "1", "0", "10", "12", ",", ".", ".5", "5.", "...", "!", "?", "-",
          "_", "/", "\\", "\"", "(", ")", "[", "]", "{", "}", "=", "+", ">", "<", "@", "`", ";", ":", "'",
          "#", "$", "%", "&", "*", "~", "^", "|", " ", " ", "  ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c",
          "\x85", "\xa0", "\u2003", "\u3000", "\u2028", "\u200b", "é", "ß", "İ", "日本", "٣"]


def random_cases(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(1, 9)
        s = ""
        for _ in range(k):
            s += rng.choice(TOKENS)
            if rng.random() < 0.5:
                s += " "
        c = clean(s)
        out.append([s, c, normalize(c)])
    # the 32-period cap: 40 periods, then text
    s = "." * 40 + "x"
    out.append([s, clean(s), normalize(clean(s))])
    s = "a." * 35 + "b"
    out.append([s, clean(s), normalize(clean(s))])
    return out


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests", "ref", "data")
    build(out_dir)
    with open(os.path.join(out_dir, "answer_norm_cases.json"), "w", encoding="utf-8") as f:
        json.dump(random_cases(3000, 20261128), f, ensure_ascii=True, indent=0)
        f.write("\n")
    print("wrote", out_dir)


if __name__ == "__main__":
    main()
