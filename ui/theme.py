"""The page's look: a Gradio theme with fonts bundled in Gradio (nothing fetched from the web) and ``style.css``."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

THEME = gr.themes.Soft(
    primary_hue="indigo",
    secondary_hue="sky",
    neutral_hue="slate",
    radius_size="md",
    font=[gr.themes.LocalFont("IBM Plex Sans"), "ui-sans-serif", "system-ui", "sans-serif"],
    font_mono=[gr.themes.LocalFont("IBM Plex Mono"), "ui-monospace", "monospace"],
).set(
    body_background_fill="*neutral_50",
    block_shadow="none",
    button_primary_shadow="none",
    # Plain field titles: the Soft theme's tinted title chips compete with the answer's markers.
    block_title_background_fill="none",
    block_title_text_color="*neutral_700",
    block_title_text_color_dark="*neutral_200",  # dark mode (the system's, or ?__theme=dark)
    body_background_fill_dark="*neutral_950",
    block_title_text_weight="600",
    block_title_padding="0",
    block_title_radius="0",
)

CSS = (Path(__file__).with_name("style.css")).read_text(encoding="utf-8")
