#!/usr/bin/env python3
"""gen_big_vqa.py: a synthetic VQA v2 split as large as the real train split (443,757
questions; the annotations file ~330 MB), for measuring the memory and time of ds_load
(bench/dataset_load.c). Written to a scratch folder, never into the repository.

Usage: python3 tools/gen_big_vqa.py OUT_DIR [n_questions]
Writes OUT_DIR/questions.json and OUT_DIR/annotations.json in the official layouts.
"""
import json
import os
import random
import sys

WORDS = ["yes", "no", "2", "1", "white", "3", "red", "blue", "4", "green", "black", "yellow", "brown",
         "frisbee", "baseball", "tennis", "skateboarding", "kitchen", "giraffe", "pizza", "surfing",
         "umbrella", "left", "right", "nothing", "wood", "bathroom", "dog", "cat", "train", "none",
         "Yes", "a dog", "two", "10:30", "1,000", "t-shirt", "don't know", "stop sign", "snowboarding"]
QTYPES = [("is the", "yes/no"), ("what color is the", "other"), ("how many", "number"),
          ("what is the", "other"), ("are there", "yes/no"), ("what sport is", "other")]


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 443757
    os.makedirs(out, exist_ok=True)
    rng = random.Random(1)
    with open(os.path.join(out, "questions.json"), "w") as fq, open(os.path.join(out, "annotations.json"), "w") as fa:
        fq.write('{"info": {"description": "synthetic"}, "task_type": "Open-Ended", "data_type": "mscoco", '
                 '"license": {"name": "n/a"}, "data_subtype": "train2014", "questions": [')
        fa.write('{"info": {"description": "synthetic"}, "license": {"name": "n/a"}, "data_subtype": "train2014", '
                 '"annotations": [')
        for i in range(n):
            image_id = 9 + i // 5 * 7
            qid = image_id * 1000 + i % 5
            qt, at = rng.choice(QTYPES)
            mc = rng.choice(WORDS)
            answers = [{"answer": mc if rng.random() < 0.6 else rng.choice(WORDS),
                        "answer_confidence": rng.choice(["yes", "yes", "maybe", "no"]), "answer_id": j + 1}
                       for j in range(10)]
            sep = ", " if i else ""
            fq.write(sep + json.dumps({"image_id": image_id, "question": "%s %s %d?" % (qt.capitalize(),
                                       rng.choice(WORDS), i % 97), "question_id": qid}))
            fa.write(sep + json.dumps({"question_type": qt, "multiple_choice_answer": mc, "answers": answers,
                                       "image_id": image_id, "answer_type": at, "question_id": qid}))
        fq.write("]}")
        fa.write("]}")
    for f in ("questions.json", "annotations.json"):
        print("%s: %.1f MB" % (f, os.path.getsize(os.path.join(out, f)) / 1e6))


if __name__ == "__main__":
    main()
