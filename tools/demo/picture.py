"""The demo's side-by-side picture: RGB mesh | mesh coloured by class, with a legend | one class collection hidden.

Composed on the host (Pillow) from the three Cycles renders the Blender session wrote; captions under each panel,
the legend lists the classes found (colour swatch, name), largest first.
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

CAPTION_H = 28
LEGEND_ROW = 18
PAD = 8
BACKGROUND = (24, 24, 24)
TEXT = (235, 235, 235)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def compose(rgb_png: Path, classes_png: Path, hidden_png: Path | None, legend: list[dict], hidden_class: str | None,
            out_png: Path, max_legend: int = 16) -> Path:
    """Write ``out_png``; ``legend`` rows are {"name", "color": [r, g, b], "faces"}."""
    panels = [(Image.open(rgb_png).convert("RGB"), "RGB mesh"),
              (Image.open(classes_png).convert("RGB"), "Coloured by class")]
    if hidden_png is not None:
        panels.append((Image.open(hidden_png).convert("RGB"), f"'{hidden_class}' collection hidden"))
    w, h = panels[0][0].size
    rows = sorted(legend, key=lambda r: -r.get("faces", 0))[:max_legend]
    legend_h = PAD + LEGEND_ROW * ((len(rows) + 1) // 2) + PAD
    canvas = Image.new("RGB", (len(panels) * (w + PAD) + PAD, PAD + h + CAPTION_H + legend_h), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font, small = _font(16), _font(13)
    for i, (img, caption) in enumerate(panels):
        x = PAD + i * (w + PAD)
        canvas.paste(img.resize((w, h)), (x, PAD))
        draw.text((x + 4, PAD + h + 6), caption, fill=TEXT, font=font)
    # the legend under the class panel: two columns of swatch + name
    x0, y0 = PAD + (w + PAD), PAD + h + CAPTION_H
    for k, row in enumerate(rows):
        x = x0 + (k % 2) * (w // 2)
        y = y0 + PAD + (k // 2) * LEGEND_ROW
        draw.rectangle([x, y + 2, x + 12, y + 14], fill=tuple(int(c) for c in row["color"]), outline=TEXT)
        draw.text((x + 18, y), row["name"], fill=TEXT, font=small)
    if len(legend) > len(rows):
        draw.text((PAD, y0 + PAD), f"{len(legend)} classes found (largest {len(rows)} listed)", fill=TEXT, font=small)
    else:
        draw.text((PAD, y0 + PAD), f"{len(legend)} classes found", fill=TEXT, font=small)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out_png)
    return out_png
