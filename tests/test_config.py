from pathlib import Path

import pytest
import yaml

from vtr.config import ConfigError, Profile, differences, flatten, load_profile, parse_override
from vtr.paths import project_root


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


# ------------------------------------------------------------------- validation at load (pydantic)


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        # a registered name: the key, the value, the allowed names and the closest one
        (
            {"data.source": "msrvt"},
            [
                "'data.source'",
                "'msrvt'",
                "['sample', 'internvid', 'msrvtt', 'folder']",
                "did you mean 'msrvtt'",
            ],
        ),
        (
            {"video.strategy": "unifrom"},
            ["'video.strategy'", "'unifrom'", "'keyframes'", "did you mean 'uniform'"],
        ),
        (
            {"finetune.losses": ["infonce", "triplet"]},
            ["'finetune.losses[1]'", "'triplet'", "['infonce', 'hnac']"],
        ),
        ({"finetune.strategies": ["mean", "median"]}, ["'finetune.strategies[1]'", "'median'", "'dropout'"]),
        ({"finetune.scorers": ["fusoin"]}, ["'finetune.scorers[0]'", "'crossattn'", "did you mean 'fusion'"]),
        ({"msrvtt_recall.heads": ["meanp"]}, ["'msrvtt_recall.heads[0]'", "'seqtransf'"]),
        ({"msrvtt_recall.test_split": "test1k"}, ["'msrvtt_recall.test_split'", "'test_1k'"]),
        # open_clip's hundreds of architectures: the closest names, not all of them
        (
            {"model.arch": "ViT-B-23", "model.pretrained": "openai"},
            [
                "'model.arch'",
                "'ViT-B-23'",
                "names of vtr.models.encoders.list_encoders()",
                "closest: ['ViT-B-32'",
            ],
        ),
        # a fixed set of values, a pattern, ranges
        ({"finetune.fusion_text": "all"}, ["'finetune.fusion_text'", "'tokens' or 'pooled'", "'all'"]),
        ({"device": "gpu"}, ["'device'", "auto, cpu, mps, cuda or cuda:N", "'gpu'"]),
        ({"world.n_clips": 0}, ["'world.n_clips' must be >= 1, got 0"]),
        ({"train.warmup_fraction": 1.5}, ["'train.warmup_fraction' must be <= 1.0, got 1.5"]),
        ({"finetune.temperature": 0}, ["'finetune.temperature' must be > 0.0, got 0"]),
        ({"world.size": 63}, ["'world.size' must be even and >= 32"]),
        ({"world.split_fractions": [0.5, 0.5, 0.5]}, ["'world.split_fractions'", "summing to 1"]),
        ({"hnerv.main_split": 6610}, ["'hnerv.main_split' must be str, got int 6610"]),  # unquoted 6_6_10
        ({"hnerv.splits": ["6-6-10"]}, ["'hnerv.splits[0]'", "a_b_c"]),
        # rules that tie two keys together
        ({"model.arch": "ViT-B-32"}, ["'model.pretrained' is 'vtr-tiny'", "needs model.arch='vtr-tiny' or 'vtr-tiny-vit'"]),
        ({"hnerv.main_size": "huge"}, ["'hnerv.main_size' must be one of hnerv.widths", "'huge'"]),
        ({"internvid.min_duration": 20.0}, ["'internvid.min_duration' (20.0) must not exceed"]),
    ],
)
def test_a_wrong_value_fails_at_load_naming_key_value_and_allowed(
    override: dict, fragments: list[str]
) -> None:
    with pytest.raises(ConfigError) as err:
        load_profile("sample", override)
    message = str(err.value)
    assert message.startswith("--set override (on ") and "sample.yaml" in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_a_wrong_value_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("video:\n  strategy: nope\n")
    with pytest.raises(ConfigError, match=rf"^{path}: 'video.strategy' must be one of the registered"):
        load_profile(path)


def test_every_error_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        load_profile({"seed": "x", "video": {"n_frames": 0}})
    assert "'seed' must be int" in str(err.value) and "'video.n_frames' must be >= 1" in str(err.value)


def test_a_newly_registered_name_is_allowed() -> None:
    from vtr import video

    @video.register_strategy("first-frame")
    def first(frame_count: int, n: int, rng) -> list[int]:
        return [0] * n

    try:
        assert load_profile("sample", {"video.strategy": "first-frame"}).video.strategy == "first-frame"
    finally:
        video.STRATEGIES.unregister("first-frame")
    with pytest.raises(ConfigError, match="first-frame"):
        load_profile("sample", {"video.strategy": "first-frame"})


def test_loaded_sections_are_plain_dataclasses() -> None:
    import dataclasses

    cfg = load_profile("full")
    assert dataclasses.asdict(cfg.world) == dataclasses.asdict(Profile().world)
    assert dataclasses.replace(cfg.train, epochs=3).epochs == 3 and cfg.video.cache is True
    assert isinstance(cfg.internvid.timeout, float) and isinstance(cfg.hnerv.widths, dict)


# ------------------------------------------------------------------------- one source of defaults


def test_the_defaults_are_the_sample_profile() -> None:
    assert differences(Profile(), load_profile("sample")) == {}
    # pydantic does not validate defaults it is not given: give it every one, so each passes its own rules
    assert differences(Profile(), load_profile(Profile().to_dict())) == {}
    sample_yaml = yaml.safe_load((project_root() / "configs" / "sample.yaml").read_text())
    assert sample_yaml == {"name": "sample"}  # nothing restated


def test_full_lists_only_its_differences(capsys: pytest.CaptureFixture[str]) -> None:
    changed = differences(load_profile("sample"), load_profile("full"))
    with capsys.disabled():  # the full profile's differences from the sample profile, for the log
        print(f"\nfull vs sample ({len(changed)} keys):")
        for key, (a, b) in changed.items():
            print(f"  {key}: {a!r} -> {b!r}")
    full_yaml = yaml.safe_load((project_root() / "configs" / "full.yaml").read_text())
    stated = {
        f"{section}.{key}" if isinstance(body, dict) else section
        for section, body in full_yaml.items()
        for key in (body if isinstance(body, dict) else [None])
    }
    # every key full.yaml states changes something, and everything it changes is stated there
    assert stated == set(changed)
    # the structure: what the full profile is about
    assert changed["name"] == ("sample", "full") and changed["device"] == ("cpu", "auto")
    assert changed["data.source"] == ("sample", "internvid")
    assert changed["model.arch"] == ("vtr-tiny", "ViT-B-32") and changed["model.pretrained"] == (
        "vtr-tiny",
        "openai",
    )
    assert {key.split(".")[0] for key in changed} == {
        "name", "device", "video", "data", "internvid", "model", "train", "finetune", "hnerv", "msrvtt_recall",
        "moments", "extract",
    }  # fmt: skip
    assert not any(
        key.startswith(("world.", "tiny.")) for key in changed
    )  # the same sample world and tiny model


def test_flatten_and_differences() -> None:
    a = load_profile("sample")
    b = load_profile("sample", {"world.n_clips": 60, "hnerv.widths": {"small": 4, "medium": 8}})
    assert differences(a, b) == {
        "world.n_clips": (1400, 60),
        "hnerv.widths": (a.hnerv.widths, {"small": 4, "medium": 8}),
    }
    assert differences(a, a) == {}
    flat = flatten(a)
    assert flat["video.strategy"] == "uniform" and "source_file" not in flat and "world" not in flat


def test_extract_section_reads_tempmes_strings_and_names_bad_schedules() -> None:
    cfg = load_profile("sample", {"extract.merge_frame_num": "2-2-2", "extract.merge_layer": "6-8-10"})
    assert cfg.extract.merge_frame_num == [2, 2, 2] and cfg.extract.merge_layer == [6, 8, 10]
    assert load_profile("full").extract.merge and not load_profile("sample").extract.merge
    bad = {
        "extract.merge_layer": ("8-9", "one entry per merge layer"),
        "extract.merge_frame_num": ("two-two", "dash-separated string"),
        "extract.merge_token_proportion": ([30, 10, 5], "one or two values"),
    }
    for key, (value, message) in bad.items():
        with pytest.raises(ConfigError, match=message):
            load_profile("sample", {key: value})
    with pytest.raises(ConfigError, match="below 100"):
        load_profile("sample", {"extract.merge_token_proportion": "100-10"})
