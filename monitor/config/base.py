"""Base of every configuration model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown keys are errors (a misspelt key gets its line number, not a silent default)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
