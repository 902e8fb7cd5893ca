"""The Gradio chat page (``rag chat``): conversation, cited sources, uploads, collections and settings."""

import os

# Gradio reads this when it is first imported, by any module of ours: no telemetry, ever.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
