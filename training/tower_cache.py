"""The frozen audio tower's outputs, computed once per clip set and read back on every later step.

With the audio tower frozen (LoRA on the language model, the projector trained in full), the
tower's output for an item is the same at every step: only the projector and the language model
learn. :class:`TowerCache` keeps it on disk, one file per item and representation (the ruler alone
and the bundle hear different inputs), so a step after the first costs the projector and the
language model alone, and nothing is held in memory.

The cache is a run's own: it lives in the run folder (``tower-cache/``), and each file records the
features' shape it was computed from; a file that does not match is computed again.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from faderwise.tools.input_files import open_binary
from faderwise.tools.outputs import output_file, slug


class TowerCache:
    """Replaces a frozen audio tower's forward with one that reads (or computes and writes) its
    output for the item named by :meth:`heard`; outside :meth:`heard` the tower runs as before.

    Args:
        folder: where the outputs are kept (inside the run folder).
        model: the model (or its PEFT wrapper) whose ``audio_tower`` is frozen.
    """

    def __init__(self, folder: Path, model: Any) -> None:
        self.folder = folder
        self.key: str | None = None
        self.tower = next(module for name, module in model.named_modules() if name.endswith("audio_tower"))
        if any(parameter.requires_grad for parameter in self.tower.parameters()):
            raise ValueError("the audio tower is trained in this run: its outputs change every step")
        self._forward = self.tower.forward
        self.tower.forward = self.forward

    @contextlib.contextmanager
    def heard(self, item: str, representation: str) -> Iterator[None]:
        """Within the block, the tower's output is the cached one of ``item`` heard as ``representation``."""
        key = f"{item}\n{representation}"  # a readable name, and a digest so that no two items share one
        self.key = f"{slug(key)[:80]}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
        try:
            yield
        finally:
            self.key = None

    def forward(self, input_features: Any, *args: Any, **kwargs: Any) -> Any:
        """The tower's output: read from the cache for the current item, else computed (and kept)."""
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        if self.key is None:
            return self._forward(input_features, *args, **kwargs)
        path = self.folder / f"{self.key}.pt"
        shape = list(input_features.shape)
        if path.is_file():
            with open_binary(path, what="a cached tower output") as stream:
                kept = torch.load(stream, weights_only=True)
            if kept["features_shape"] == shape:
                return BaseModelOutput(last_hidden_state=kept["hidden"].to(input_features.device))
        with torch.no_grad():
            output = self._forward(input_features, *args, **kwargs)
        self.folder.mkdir(parents=True, exist_ok=True)
        with output_file(path, force=True) as staging:
            torch.save({"features_shape": shape, "hidden": output.last_hidden_state.detach().cpu()}, staging)
        return output
