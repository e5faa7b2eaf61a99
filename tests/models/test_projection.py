"""vtr.models.projection: seed 002's text projection, created through its registry."""

from __future__ import annotations

import pytest
import torch

from vtr.models.projection import TextProjection, create_projection, list_projections
from vtr.registry import UnknownNameError


def test_text_projection_starts_as_identity() -> None:
    x = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    assert torch.allclose(TextProjection(8, 8, 16)(x), x, atol=1e-6)
    assert TextProjection(8, 12, 16)(x).shape == (4, 12)



def test_projection_registry_creates_the_mlp_and_names_unknown_kinds() -> None:
    assert "mlp" in list_projections()
    assert isinstance(create_projection("mlp", 8, 8, 16), TextProjection)
    with pytest.raises(UnknownNameError, match="unknown projection 'linear'"):
        create_projection("linear", 8, 8, 16)
