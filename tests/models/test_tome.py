import pytest
import torch
from open_clip.transformer import VisionTransformer

from vtr.models.tome import (
    TEMPME_VIT_B32,
    MergeConfig,
    MergeStats,
    _attend,
    bipartite_merge,
    join_frames,
    merged_clip_features,
    merged_video_features,
)


def _vit(layers: int = 4) -> VisionTransformer:
    torch.manual_seed(0)
    vit = VisionTransformer(
        image_size=32, patch_size=8, width=64, layers=layers, heads=4, mlp_ratio=4.0, output_dim=32
    )
    return vit.eval()


def test_without_merging_equals_open_clip_per_frame():
    vit = _vit()
    frames = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        ours = merged_clip_features(vit, frames, MergeConfig())
        reference = vit(frames.flatten(0, 1)).reshape(2, 3, -1)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)


def test_proportional_attention_makes_a_merged_token_act_as_its_duplicates():
    # Attention over [cls, p1, p2, p1, p2] (sizes 1) equals attention over [cls, p1, p2] with the
    # patches' sizes 2: the merged token attends and is attended to as the two copies were.
    block = _vit().transformer.resblocks[0]
    unique = torch.randn(1, 3, 64)
    duplicated = torch.cat([unique, unique[:, 1:]], dim=1)
    with torch.no_grad():
        plain = _attend(block, duplicated, torch.ones(1, 5, 1))
        merged = _attend(block, unique, torch.tensor([1.0, 2.0, 2.0]).view(1, 3, 1))
    torch.testing.assert_close(merged, plain[:, :3], atol=1e-5, rtol=1e-5)


def test_joined_duplicate_frames_merge_pairwise():
    # Interleaving puts frame 1's and frame 2's copy of each patch in opposite bipartite sets, so
    # merging half the patches pairs every patch with its own copy (cosine 1).
    frame = torch.randn(1, 17, 64)
    joined, size = join_frames(frame.repeat(2, 1, 1), torch.ones(2, 17, 1), 2)
    merged, merged_size = bipartite_merge(joined, size, joined, r=16)
    assert merged_size.flatten().tolist() == [2.0] * 17
    order = torch.cdist(merged[0, 1:], frame[0, 1:]).argmin(dim=1)
    assert sorted(order.tolist()) == list(range(16))
    torch.testing.assert_close(merged[0, 1:], frame[0, 1:][order])


def test_bipartite_merge_keeps_class_token_and_mass():
    x = torch.randn(2, 9, 8)
    size = torch.ones(2, 9, 1)
    merged, merged_size = bipartite_merge(x, size, x, r=3)
    assert merged.shape == (2, 6, 8) and merged_size.sum(dim=1).eq(9).all()
    torch.testing.assert_close(merged[:, 0], x[:, 0])  # the class token is never merged
    torch.testing.assert_close((merged * merged_size).sum(dim=1), x.sum(dim=1), atol=1e-5, rtol=1e-5)


def test_bipartite_merge_pairs_the_most_similar_tokens():
    cls = torch.tensor([[5.0, 5.0]])
    a1, b1 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.99, 0.05]])
    a2, b2 = torch.tensor([[0.0, 1.0]]), torch.tensor([[-1.0, 0.2]])
    x = torch.cat([cls, b2, a1, b1, a2])[None]  # a-set: cls, a1, a2 ; b-set: b2, b1
    merged, size = bipartite_merge(x, torch.ones(1, 5, 1), x, r=1)
    assert size.flatten().tolist() == [1.0, 1.0, 1.0, 2.0]  # a1 went into b1
    torch.testing.assert_close(merged[0, 3], (a1[0] + b1[0]) / 2)


def test_join_frames_averages_class_tokens_and_interleaves_patches():
    x = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    joined, size = join_frames(x, torch.ones(2, 3, 1), 2)
    assert joined.shape == (1, 5, 2) and size.flatten().tolist() == [2, 1, 1, 1, 1]
    torch.testing.assert_close(joined[0, 0], (x[0, 0] + x[1, 0]) / 2)
    torch.testing.assert_close(joined[0, 1:], torch.stack([x[0, 1], x[1, 1], x[0, 2], x[1, 2]]))


def test_tempme_schedule_reduces_tokens_and_returns_one_clip():
    vit = _vit(layers=12)
    frames = torch.randn(1, 12, 3, 32, 32)
    stats, plain = MergeStats(), MergeStats()
    with torch.no_grad():
        out = merged_clip_features(vit, frames, TEMPME_VIT_B32, stats)
        merged_clip_features(vit, frames, MergeConfig(), plain)
        video = merged_video_features(vit, frames, TEMPME_VIT_B32)
    assert out.shape == (1, 1, 32) and video.shape == (1, 32)
    torch.testing.assert_close(video.norm(dim=-1), torch.ones(1))
    assert plain.total_tokens == 12 * 12 * 17
    assert stats.total_tokens < 0.5 * plain.total_tokens
    assert stats.tokens_per_block == sorted(stats.tokens_per_block, reverse=True)


def test_config_from_tempme_strings_and_errors():
    assert MergeConfig.from_tempme("2-2-3", "8-9-10", "30-10") == TEMPME_VIT_B32
    seed = MergeConfig.from_tempme("2-2-2", [6, 8, 10], [0.3, 0.7])  # seed 001's JSON
    assert seed == MergeConfig(merge_frames=(2, 2, 2), merge_layers=(6, 8, 10), intra=0.3, inter=0.7)
    with pytest.raises(ValueError, match="cannot be joined"):
        TEMPME_VIT_B32.frames_out(8)
    with pytest.raises(ValueError, match="differ in length"):
        MergeConfig(merge_frames=(2,), merge_layers=(1, 2))
    with pytest.raises(ValueError, match="exceed"):
        merged_clip_features(_vit(layers=2), torch.randn(1, 2, 3, 32, 32), MergeConfig((2,), (5,)))
    with pytest.raises(TypeError, match="VisionTransformer"):
        merged_clip_features(torch.nn.Linear(2, 2), torch.randn(1, 2, 3, 32, 32), MergeConfig())


def test_encode_clips_merged_matches_the_encoder_without_merging():
    import numpy as np

    from vtr.models.encoders import create_encoder
    from vtr.models.tome import TEMPME_TINY_VIT, encode_clips_merged

    torch.manual_seed(0)
    encoder = create_encoder("vtr-tiny-vit", "", device="cpu")
    videos = [np.random.default_rng(i).integers(0, 255, (12, 64, 64, 3), dtype=np.uint8) for i in range(2)]
    np.testing.assert_allclose(
        encode_clips_merged(encoder, videos, MergeConfig()), encoder.encode_clips(videos), atol=1e-5
    )
    merged = encode_clips_merged(encoder, videos, TEMPME_TINY_VIT)
    assert merged.shape == (2, encoder.output_dim)
    np.testing.assert_allclose(np.linalg.norm(merged, axis=1), 1.0, rtol=1e-5)
