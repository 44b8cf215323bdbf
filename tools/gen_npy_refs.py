#!/usr/bin/env python3
"""gen_npy_refs.py: writes tests/ref/npy_unicode.npy with numpy's own np.save, the bytes
that src/train/npy.c must reproduce exactly (test_trainer: npy_writer_matches_numpy)."""
import os
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "tests", "ref", "npy_unicode.npy")
answers = ["yes", "no", "2", "blue", "caf\u00e9", "\u65e5\u672c", ""]
np.save(out, np.array(answers))
print(out, np.load(out).dtype)
