"""vtr.models.crossmodal: pair scorers start as the dual encoder, masks hold, token features match open_clip."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vtr.models.crossmodal import TextFeatures, VideoFeatures, create_scorer, text_token_features

D = 32


def _features(q: int = 5, n: int = 4, seed: int = 0) -> tuple[TextFeatures, VideoFeatures]:
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 9, (q, 1), generator=gen)
    text = TextFeatures(
        F.normalize(torch.randn(q, D, generator=gen), dim=-1),
        torch.randn(q, 10, D, generator=gen),
        torch.arange(10)[None, :] < lengths,
    )
    video = VideoFeatures(
        F.normalize(torch.randn(n, 6, D, generator=gen), dim=-1), torch.ones(n, 6, dtype=torch.bool)
    )
    video.mask[1, 4:] = False
    return text, video


SCORERS = [
    ("crossattn", {"heads": 2}),
    ("fusion", {"width": 16, "heads": 2, "layers": 2, "text": "tokens"}),
    ("fusion", {"width": 16, "heads": 2, "layers": 2, "text": "pooled"}),
]


@pytest.mark.parametrize(("kind", "options"), SCORERS)
def test_pair_scorer_starts_as_its_dual_encoder(kind: str, options: dict) -> None:
    torch.manual_seed(0)
    text, video = _features()
    scorer = create_scorer(kind, D, temporal_kwargs={"layers": 1}, **options).eval()
    dual = create_scorer("dual", D, temporal_kwargs={"layers": 1}).eval()
    dual.load_state_dict(
        {k: v for k, v in scorer.state_dict().items() if k.split(".")[0] in ("temporal", "text_adapter")}
    )
    expected = F.normalize(text.pooled, dim=-1) @ dual.embed_video(video).T
    torch.testing.assert_close(dual.scores(text, video), expected)
    torch.testing.assert_close(scorer.scores(text, video), expected, atol=1e-5, rtol=0)


def _perturbed(kind: str, options: dict) -> torch.nn.Module:
    """A scorer whose zero-initialised residual layers are no longer zero (as after training)."""
    torch.manual_seed(1)
    scorer = create_scorer(kind, D, temporal_kwargs={"layers": 1, "dropout": 0.0}, **options)
    for name, param in scorer.named_parameters():
        if name.startswith(("out_", "head", "text_adapter", "temporal.out")):
            torch.nn.init.normal_(param, std=0.3)
    if hasattr(scorer, "encoder"):
        for layer in scorer.encoder.layers:
            layer.dropout.p = layer.dropout1.p = layer.dropout2.p = 0.0
    return scorer.eval()


@pytest.mark.parametrize(("kind", "options"), SCORERS)
def test_scores_agree_with_pair_scores_and_ignore_padding(kind: str, options: dict) -> None:
    scorer = _perturbed(kind, options)
    text, video = _features()
    full = scorer.scores(text, video)
    t_idx, v_idx = torch.tensor([0, 3, 4, 4]), torch.tensor([2, 1, 0, 3])
    torch.testing.assert_close(scorer.pair_scores(text, video, t_idx, v_idx), full[t_idx, v_idx])
    assert not torch.allclose(full, scorer.dual_scores(text, video), atol=1e-3)  # the residual is used

    noisy_tokens = text.tokens.masked_fill(~text.mask[..., None], 50.0)
    noisy_frames = video.frames.masked_fill(~video.mask[..., None], 50.0)
    noisy = scorer.scores(
        TextFeatures(text.pooled, noisy_tokens, text.mask), VideoFeatures(noisy_frames, video.mask)
    )
    torch.testing.assert_close(noisy, full, atol=1e-5, rtol=1e-5)


def test_text_token_features_match_open_clip() -> None:
    from vtr.models.encoders import create_encoder

    torch.manual_seed(0)
    encoder = create_encoder("vtr-tiny", "", device="cpu")
    captions = ["a red circle moves left", "a small blue square grows on a plain green background"]
    tokens = encoder.tokenizer(captions)
    with torch.no_grad():
        features = text_token_features(encoder.model, tokens)
        reference = F.normalize(encoder.model.encode_text(tokens), dim=-1)
    torch.testing.assert_close(features.pooled, reference)
    assert features.mask.sum(dim=1).tolist() == [int(t.argmax()) + 1 for t in tokens]
    end = tokens.argmax(dim=1)
    torch.testing.assert_close(F.normalize(features.tokens[torch.arange(2), end], dim=-1), reference)


def test_text_token_features_skip_the_padding_and_keep_every_valid_token() -> None:
    """Only the columns up to the longest caption's end token are computed: the valid tokens equal
    the text tower run over the whole context (its causal mask hides the padding); the columns past
    the longest caption are zero."""
    from vtr.models.encoders import create_encoder

    torch.manual_seed(0)
    model = create_encoder("vtr-tiny", "", device="cpu").model
    tokens = create_encoder("vtr-tiny", "", device="cpu").tokenizer(["a red circle moves left", "a square"])
    with torch.no_grad():
        features = text_token_features(model, tokens)
        x = model.token_embedding(tokens) + model.positional_embedding
        whole = model.ln_final(model.transformer(x, attn_mask=model.attn_mask)) @ model.text_projection
    assert features.tokens.shape == whole.shape
    torch.testing.assert_close(features.tokens[features.mask], whole[features.mask], atol=1e-5, rtol=1e-5)
    longest = int(features.mask.sum(dim=1).max())
    assert longest < tokens.shape[1]  # the test would not see the trimming otherwise
    assert not features.tokens[:, longest:].any()


def test_unknown_scorer() -> None:
    with pytest.raises(ValueError, match="unknown scorer"):
        create_scorer("late-fusion", D)
    with pytest.raises(ValueError, match="tokens"):
        create_scorer("fusion", D, text="words")


def test_scorers_are_one_registry_the_profile_validates_against() -> None:
    from vtr.config import ConfigError, load_profile
    from vtr.models.crossmodal import SCORERS, DualEncoderScorer, list_scorers, register_scorer

    assert list_scorers() == ["dual", "crossattn", "fusion"]
    with pytest.raises(ConfigError, match=r"late-fusion") as bad:
        load_profile("sample", {"finetune.scorers": ["dual", "late-fusion"]})
    assert "crossattn" in str(bad.value)  # the message lists the registered names

    @register_scorer("plain-dual")
    class PlainDual(DualEncoderScorer):
        pass

    try:
        assert load_profile("sample", {"finetune.scorers": ["plain-dual"]}).finetune.scorers == ["plain-dual"]
        assert type(create_scorer("plain-dual", D)) is PlainDual
    finally:
        SCORERS.unregister("plain-dual")
