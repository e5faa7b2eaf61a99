"""vtr.models.temporal: mean pooling by hand, seqTransf starts as mean pooling, masks, order."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vtr.models.temporal import create_temporal_head


def _frames(b: int = 3, t: int = 5, d: int = 16, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(b, t, d, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_mean_head_by_hand() -> None:
    frames = _frames()
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [0, 1, 0, 1, 0]], dtype=torch.bool)
    out = create_temporal_head("mean", 16)(frames, mask)
    expected = torch.stack([frames[0, :2].mean(0), frames[1].mean(0), frames[2, [1, 3]].mean(0)])
    torch.testing.assert_close(out, F.normalize(expected, dim=-1))
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(3))


def test_seqtransf_starts_as_mean_pooling() -> None:
    torch.manual_seed(0)
    frames, mask = _frames(), torch.rand(3, 5) > 0.3
    mask[:, 0] = True
    head = create_temporal_head("seqtransf", 16, layers=2, heads=2).eval()
    mean = create_temporal_head("mean", 16)
    torch.testing.assert_close(head(frames, mask), mean(frames, mask))
    torch.testing.assert_close(head(frames), mean(frames))


def _trained_like(head: torch.nn.Module) -> torch.nn.Module:
    """A seqTransf head whose output projection is no longer zero (as after training)."""
    torch.manual_seed(1)
    torch.nn.init.normal_(head.out.weight, std=0.5)
    return head.eval()


def test_seqtransf_sees_frame_order_and_ignores_padding() -> None:
    head = _trained_like(create_temporal_head("seqtransf", 16, layers=2, heads=2, dropout=0.0))
    frames = _frames(1, 6)
    reversed_frames = frames.flip(1)
    mean = create_temporal_head("mean", 16)
    torch.testing.assert_close(mean(frames), mean(reversed_frames))
    assert not torch.allclose(head(frames), head(reversed_frames), atol=1e-4)

    mask = torch.tensor([[True, True, True, True, False, False]])
    garbage = frames.clone()
    garbage[:, 4:] = 100.0  # padded frames must not leak into the valid ones or the pooled output
    torch.testing.assert_close(head(frames, mask), head(garbage, mask))
    torch.testing.assert_close(head(frames, mask), head(frames[:, :4]))


def test_bad_inputs() -> None:
    head = create_temporal_head("seqtransf", 16, heads=2, max_frames=4)
    with pytest.raises(ValueError, match=r"\(B, T, 16\)"):
        head(torch.zeros(2, 3, 8))
    with pytest.raises(ValueError, match="max_frames"):
        head(_frames(1, 5))
    with pytest.raises(ValueError, match="rows \\[1\\]"):
        head(_frames(2, 3), torch.tensor([[True, True, False], [False, False, False]]))
    with pytest.raises(ValueError, match="unknown temporal head"):
        create_temporal_head("lstm", 16)
    with pytest.raises(ValueError, match="divisible"):
        create_temporal_head("seqtransf", 16, heads=3)


def test_heads_are_registered_by_kind() -> None:
    from vtr.models.temporal import HEADS, list_temporal_heads

    assert list_temporal_heads() == ["mean", "seqtransf", "trend"]
    assert isinstance(create_temporal_head("SeqTransf", 16, heads=2), HEADS.get("seqtransf"))


def test_trend_head_separates_a_clip_from_its_reversal_and_reduces_to_mean_on_stills() -> None:
    from vtr.models.temporal import TrendHead, legendre_weights

    torch.manual_seed(0)
    head = TrendHead(8, degree=2)
    frames = torch.randn(1, 6, 8)
    forward, backward = head(frames), head(frames.flip(1))
    assert not torch.allclose(forward, backward, atol=1e-4)
    # the slope flips with time, the curvature does not
    moments = head.moments(frames, None), head.moments(frames.flip(1), None)
    torch.testing.assert_close(moments[0][:, 0], -moments[1][:, 0])
    torch.testing.assert_close(moments[0][:, 1], moments[1][:, 1])
    still = torch.randn(1, 1, 8).repeat(1, 6, 1)
    torch.testing.assert_close(head(still), F.normalize(still[:, 0], dim=-1))
    weights = legendre_weights(5, 2)
    torch.testing.assert_close(weights.pow(2).mean(dim=1), torch.ones(2))
    with pytest.raises(ValueError, match="degree"):
        TrendHead(8, degree=4)
