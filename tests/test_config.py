from pathlib import Path

import pytest

from vtr.config import ConfigError, Profile, load_profile, parse_override


def test_shipped_profiles_load() -> None:
    sample = load_profile("sample")
    full = load_profile("full")
    assert sample.name == "sample" and full.name == "full"
    assert full.model.arch == "ViT-B-32" and full.model.pretrained == "openai"


def test_defaults_fill_missing_keys() -> None:
    cfg = load_profile({"seed": 3})
    assert cfg.seed == 3
    assert cfg.world == Profile().world


def test_unknown_key_names_key_file_and_valid_keys(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("world:\n  n_clip: 10\n")
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    message = str(err.value)
    assert "world.n_clip" in message
    assert str(path) in message
    assert "n_clips" in message  # the valid keys, and the suggestion


def test_unknown_top_level_section() -> None:
    with pytest.raises(ConfigError, match="unknown key 'wrld'.*did you mean 'world'"):
        load_profile({"wrld": {}})


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"seed": "zero"}, "'seed' must be int"),
        ({"seed": True}, "'seed' must be int"),
        ({"world": 5}, "'world' must be a section"),
        ({"world": {"split_fractions": 0.5}}, "must be a list"),
        ({"world": {"split_fractions": [0.5, "x"]}}, r"split_fractions\[1\]"),
    ],
)
def test_wrong_types_are_errors(raw: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_profile(raw)


def test_int_is_accepted_for_float() -> None:
    cfg = load_profile({"internvid": {"min_aesthetic": 5}})
    assert cfg.internvid.min_aesthetic == 5.0 and isinstance(cfg.internvid.min_aesthetic, float)


def test_overrides_are_parsed_and_validated() -> None:
    key, value = parse_override("world.n_clips=60")
    cfg = load_profile("sample", overrides={key: value})
    assert cfg.world.n_clips == 60
    with pytest.raises(ConfigError, match="world.bogus"):
        load_profile("sample", overrides=dict([parse_override("world.bogus=1")]))
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("world.n_clips")


def test_missing_profile_lists_known_profiles() -> None:
    with pytest.raises(ConfigError, match="known profiles: .*'sample'"):
        load_profile("nonexistent")


def test_a_mistyped_override_is_blamed_on_the_override_not_the_file() -> None:
    with pytest.raises(
        ConfigError, match=r"--set override .*unknown key 'video.n_frame' \(did you mean 'video.n_frames'\?\)"
    ):
        load_profile("sample", {"video.n_frame": 3})
