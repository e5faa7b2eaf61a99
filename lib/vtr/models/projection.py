"""Projections of frozen embeddings, registered by name (``register_projection`` / ``create_projection``).

Notebook 05 trains seed 002's recipe on frozen CLIP features: a small MLP that maps the frozen text
embeddings into the video embedding space, trained with hard-negative InfoNCE
(:func:`vtr.losses.hard_negative_info_nce`).

    from vtr.models.projection import create_projection, list_projections

    model = create_projection("mlp", in_dim=512, out_dim=512, hidden=512)   # a TextProjection
    list_projections()                                                      # ["mlp"]
"""

from __future__ import annotations

from torch import Tensor, nn

from vtr.registry import Registry

PROJECTIONS: Registry = Registry("projection")
register_projection = PROJECTIONS.register
create_projection = PROJECTIONS.create
list_projections = PROJECTIONS.names


@register_projection("mlp")
class TextProjection(nn.Module):
    """Seed 002's projection of frozen text embeddings: ``Linear → GELU → Linear``, then L2-normalised.

    With equal input and output widths it is residual (``x + mlp(x)``) with the last layer zero-
    initialised, so it starts as the identity and training starts from the zero-shot scores; with
    different widths (e.g. 512-d text onto 1024-d pre-extracted video features) it is the plain MLP.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int) -> None:
        super().__init__()
        self.residual = in_dim == out_dim
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))
        if self.residual:
            nn.init.zeros_(self.mlp[2].weight)
            nn.init.zeros_(self.mlp[2].bias)

    def forward(self, text: Tensor) -> Tensor:
        out = self.mlp(text)
        return nn.functional.normalize(text + out if self.residual else out, dim=-1)
