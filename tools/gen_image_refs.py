#!/usr/bin/env python3
"""gen_image_refs.py: reference images for tests/test_image.c, made with Pillow + numpy.

Writes tests/ref/img_*.png: a few deterministic source images (RGB, grayscale, RGBA,
gray+alpha, a JPEG) and what Pillow's Image.resize(..., BILINEAR) (the resize that
torchvision uses with antialias=True on PIL images) makes of them, so the C resampler is
checked against an implementation it shares no code with. Run from the repo root:
    python3 tools/gen_image_refs.py
"""
import os

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "ref")


def source(w, h, seed):
    """Smooth gradients + sharp edges + noise: exercises both filter support and clipping."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 127 + 120 * np.sin(x / 5.0 + y / 11.0)
    g = np.where((x // 7 + y // 5) % 2 == 0, 230, 20).astype(np.float64)
    b = 255 * x / max(w - 1, 1)
    img = np.stack([r, g, b], -1) + rng.normal(0, 12, (h, w, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def torchvision_shorter_crop(im, S):
    """torchvision Resize(S) + CenterCrop(S) on a PIL image, spelled out."""
    w, h = im.size
    if w <= h:
        nw, nh = S, int(S * h / w)
    else:
        nw, nh = int(S * w / h), S
    r = im.resize((nw, nh), Image.BILINEAR)
    top = int(round((nh - S) / 2.0))
    left = int(round((nw - S) / 2.0))
    return r.crop((left, top, left + S, top + S))


def save(name, im):
    im.save(os.path.join(OUT, name))


def main():
    os.makedirs(OUT, exist_ok=True)
    a = Image.fromarray(source(97, 61, 1), "RGB")
    save("img_src_a.png", a)
    save("img_a_direct32.png", a.resize((32, 32), Image.BILINEAR))
    save("img_a_crop24.png", torchvision_shorter_crop(a, 24))
    save("img_a_box20x16.png", a.resize((20, 16), Image.BILINEAR, box=(10.5, 5.25, 70.0, 50.0)))

    b = Image.fromarray(source(13, 9, 2), "RGB")
    save("img_src_b.png", b)
    save("img_b_direct40.png", b.resize((40, 40), Image.BILINEAR))

    c = Image.fromarray(source(150, 200, 3)[:, :, 0], "L")  # portrait, grayscale
    save("img_src_c_gray.png", c)
    c_rgb = c.convert("RGB")
    save("img_c_crop56.png", torchvision_shorter_crop(c_rgb, 56))

    d = Image.fromarray(source(300, 20, 4), "RGB")  # extreme downscale along x
    save("img_src_d.png", d)
    save("img_d_direct7x5.png", d.resize((7, 5), Image.BILINEAR))

    # RGBA and gray+alpha: decoding must drop alpha (not premultiply) and expand gray.
    rgba = np.concatenate([source(17, 11, 5), source(17, 11, 6)[:, :, :1]], -1)
    save("img_src_rgba.png", Image.fromarray(rgba, "RGBA"))
    save("img_rgba_as_rgb.png", Image.fromarray(rgba[:, :, :3].copy(), "RGB"))
    la = np.stack([source(9, 7, 7)[:, :, 0], source(9, 7, 8)[:, :, 1]], -1)
    save("img_src_la.png", Image.fromarray(la, "LA"))
    save("img_la_as_rgb.png", Image.fromarray(np.repeat(la[:, :, :1], 3, -1), "RGB"))

    # JPEG, 4:4:4 so that decoders differ only by IDCT rounding; PIL's decode as reference.
    j = Image.fromarray(source(48, 40, 9), "RGB")
    j.save(os.path.join(OUT, "img_src_e.jpg"), quality=92, subsampling=0)
    save("img_e_decoded.png", Image.open(os.path.join(OUT, "img_src_e.jpg")).convert("RGB"))


if __name__ == "__main__":
    main()
