"""What a judge can read from its model's own files before loading it: the chat template.

Judges whose prompt depends on the model version (Llama Guard 3 8B or 1B, Granite Guardian
3.0 or later) read it from the template the model ships, not from its name, so a local copy
of a model is judged with the prompt its own template renders.

    template = local_chat_template("models/llama-guard-3-1b")   # None for a hub id
"""

from __future__ import annotations

import json
from pathlib import Path


def local_chat_template(model: str) -> str | None:
    """The chat template of a local model folder (chat_template.jinja, or the
    tokenizer_config.json entry, its "default" one when it holds several); None when `model`
    is not a local folder or its folder ships no template."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return None
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    config = folder / "tokenizer_config.json"
    if not config.is_file():
        return None
    try:
        template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
    except ValueError as err:
        raise ValueError(f"{config} is not valid JSON: {err}") from err
    if isinstance(template, list):  # [{"name": "default", "template": ...}, ...]
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    return template if isinstance(template, str) and template else None
