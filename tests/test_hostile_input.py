"""Careless or hostile input: every mistake is a short one-line UserError, found fast.

Nothing here loads a model, touches the network or renders; each test runs in milliseconds.
"""

import time

import pytest
import torch
from conftest import NO_BLOW_UP

from dreamvideo.config import Config, ConfigError
from dreamvideo.engine.objectives import (
    MAX_OBJECTIVE_CHARS,
    MAX_TERMS,
    Objective,
    ObjectiveError,
    layer,
    parse_objective,
)
from dreamvideo.errors import UserError
from dreamvideo.motion.schedule import (
    MAX_KEYFRAMES,
    MAX_SCHEDULE_CHARS,
    ScheduleError,
    parse_schedule,
)
from dreamvideo.presets import MAX_PRESET_BYTES, apply_sets, load_preset
from dreamvideo.text import excerpt

CHANNELS = {"blocks.1": 16, "blocks.10": 112}
NAN, INF = float("nan"), float("inf")


def one_short_line(error: BaseException, limit: int = 300) -> str:
    """The message, checked to be one line of at most ``limit`` characters."""
    message = str(error)
    assert "\n" not in message and "\r" not in message, message
    assert len(message) <= limit, (len(message), message[:400])
    return message


# ------------------------------------------------------------------ 1. NaN and infinity


@pytest.mark.parametrize(
    "section, key",
    [
        ("dream", "step"),
        ("dream", "octave_scale"),
        ("video", "start"),
        ("video", "end"),
        ("video", "scale"),
        ("video", "blend"),
        ("zoom", "center_x"),
        ("zoom", "fps"),
        ("zoom", "seconds"),
        ("zoom", "zoom"),
        ("zoom", "step"),
    ],
)
@pytest.mark.parametrize("bad", [NAN, INF, -INF, 1e999])
def test_non_finite_numbers_are_refused(section, key, bad):
    with pytest.raises(ConfigError, match=rf"^{section}\.{key}: must be ") as e:
        Config.from_dict({section: {key: bad}})
    one_short_line(e.value)


@pytest.mark.parametrize("key", ["zoom", "rotate", "pan_x", "iterations", "step"])
@pytest.mark.parametrize(
    "bad", ["nan", "0: 1.0, 10: nan", "linear: 0: 1, 5s: -nan", "inf", "0: 1, 10: 1e999"]
)
def test_non_finite_keyframe_values_are_refused(key, bad):
    with pytest.raises(ConfigError, match=rf"^zoom\.{key}: must be ") as e:
        Config.from_dict({"zoom": {key: bad}})
    one_short_line(e.value)


def test_nan_names_the_key_and_finiteness():
    with pytest.raises(ConfigError, match=r"^dream\.step: must be a finite number, got nan$"):
        Config.from_dict({"dream": {"step": NAN}})
    # unbounded above, so inf passes the range rule and is caught as not finite
    with pytest.raises(ConfigError, match=r"^video\.start: must be a finite number, got inf$"):
        Config.from_dict({"video": {"start": INF}})
    with pytest.raises(ConfigError, match=r"^zoom\.zoom: must be a finite number, got nan$"):
        Config.from_dict({"zoom": {"zoom": "0: 1.0, 10: nan"}})


def test_overrides_and_huge_integers_are_refused_too():
    cfg = Config()
    with pytest.raises(ConfigError, match="dream.step: must be a finite number"):
        cfg.override("dream", step=NAN)
    with pytest.raises(ConfigError, match="video.end: must be a finite number") as e:
        cfg.override("video", end=10**400)  # finite, but no float holds it
    one_short_line(e.value)


@pytest.mark.parametrize("text", ["0: 1, 1e999: 2", "0: 1, " + "9" * 400 + ": 2"])
def test_keyframe_times_must_be_finite(text):
    with pytest.raises(ScheduleError, match="zoom.zoom: ") as e:
        parse_schedule(text, "zoom.zoom")
    one_short_line(e.value)
    with pytest.raises(ConfigError, match="zoom.zoom: "):
        Config.from_dict({"zoom": {"zoom": text}})


# ------------------------------------------------------------------ 2. objective numbers


@pytest.mark.parametrize(
    "text, message",
    [
        ("1e999*blocks.10", r"weight 1e999 is not a finite number"),
        ("blocks.1 - 1e999*blocks.10", r"weight 1e999 is not a finite number"),
        ("blocks.10:3@nan,0.5", r"expected an x position in 0\.\.1, got 'nan'"),
        ("blocks.10:3@1e999,0.5", r"neuron position must be in 0\.\.1, got inf,0\.5"),
        ("blocks.10:3@0.5,1e999", r"neuron position must be in 0\.\.1"),
    ],
)
def test_non_finite_objective_numbers_are_refused(text, message):
    for channels in (CHANNELS, None):
        with pytest.raises(ObjectiveError, match=message) as e:
            parse_objective(text, channels)
        assert one_short_line(e.value).startswith(f"objective {text[:40]!r}")


# ------------------------------------------------------------------ 3. many terms


def test_a_sum_of_a_thousand_terms_is_flat_and_does_not_recurse():
    feats = {"blocks.1": torch.ones(1, 2, 2, 2)}
    term = layer("blocks.1")
    total = Objective.sum([term] * 1000)
    assert torch.allclose(total(feats), torch.tensor([1000.0]))
    assert total.name == " + ".join(["blocks.1"] * 1000)
    chained = term
    for _ in range(999):  # adding to a sum extends it instead of nesting closures
        chained = chained + term
    assert len(chained.terms) == 1000 and chained.name == total.name
    assert torch.allclose(chained(feats), torch.tensor([1000.0]))


def test_sums_keep_names_and_signs():
    a, b = layer("blocks.1"), layer("blocks.10")
    assert (a - 0.5 * b + a).name == "blocks.1 - 0.5*blocks.10 + blocks.1"
    assert (2 * (a + b)).name == "2*(blocks.1 + blocks.10)"
    assert Objective.sum([a]) is a
    with pytest.raises(ObjectiveError, match="at least one term"):
        Objective.sum([])


def test_objectives_are_capped_in_terms_and_length():
    ok = " + ".join(["blocks.1"] * MAX_TERMS)
    assert len(parse_objective(ok, CHANNELS).terms) == MAX_TERMS
    with pytest.raises(
        ObjectiveError,
        match=rf"more than {MAX_TERMS} terms; at most "
        rf"{MAX_TERMS}",
    ) as e:
        parse_objective(ok + " + blocks.1", CHANNELS)
    one_short_line(e.value)
    huge = " + ".join(["blocks.1"] * 1000)  # the RecursionError of old
    start = time.perf_counter()
    with pytest.raises(
        ObjectiveError, match=f"is {len(huge):,} characters; at most {MAX_OBJECTIVE_CHARS:,}"
    ) as e:
        parse_objective(huge, CHANNELS)
    assert time.perf_counter() - start < NO_BLOW_UP
    assert one_short_line(e.value).startswith("objective 'blocks.1 + blocks.1")


# ------------------------------------------------------------------ 4. seeds


@pytest.mark.parametrize(
    "seed", [2**63, 2**64 + 1, 10**5000, -1], ids=["2**63", "2**64+1", "10**5000", "-1"]
)
def test_seed_must_fit_in_63_bits(seed):
    with pytest.raises(
        ConfigError,
        match=r"^dream\.seed: must be an integer in 0\.\.2\*\*63-1, "
        r"got ",
    ) as e:
        Config.from_dict({"dream": {"seed": seed}})
    one_short_line(e.value)
    assert Config.from_dict({"dream": {"seed": 2**63 - 1}}).dream.seed == 2**63 - 1


# ------------------------------------------------------------------ 5. YAML bombs

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
dream:
  layers: *i
"""


def test_a_billion_laughs_preset_fails_fast(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BILLION_LAUGHS)
    start = time.perf_counter()
    with pytest.raises(UserError) as e:
        load_preset(str(bomb))
    assert time.perf_counter() - start < NO_BLOW_UP
    assert one_short_line(e.value) == (
        f"{bomb}: YAML anchors and aliases (&, *) are not allowed in presets (line 1)"
    )


def test_aliases_are_refused_where_they_first_appear(tmp_path):
    alias = tmp_path / "alias.yaml"
    alias.write_text("dream:\n  step: 2\nvideo:\n  blend: *x\n")
    with pytest.raises(UserError, match=r"are not allowed in presets \(line 4\)$"):
        load_preset(str(alias))


def test_big_or_deep_preset_files_are_refused(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_PRESET_BYTES + 1))
    with pytest.raises(UserError, match=rf"^{big}: preset is 1,048,577 bytes; at most 1 MB$"):
        load_preset(str(big))
    deep = tmp_path / "deep.yaml"
    deep.write_text("dream: " + "[" * 5000)  # a RecursionError in the YAML composer
    with pytest.raises(UserError, match=rf"^{deep}: YAML nested deeper than 20 levels") as e:
        load_preset(str(deep))
    one_short_line(e.value)
    huge_int = tmp_path / "int.yaml"
    huge_int.write_text("dream:\n  seed: " + "1" * 5000 + "\n")  # Python refuses to parse it
    with pytest.raises(UserError, match=rf"^{huge_int}: invalid YAML: ") as e:
        load_preset(str(huge_int))
    one_short_line(e.value)


def test_set_values_use_the_same_loader_and_a_length_cap():
    cfg = Config()
    bomb = "{" + ", ".join(line.rstrip() for line in BILLION_LAUGHS.splitlines()[:9]) + "}"
    start = time.perf_counter()
    # refused YAML is kept as the raw text, which is no integer
    with pytest.raises(
        ConfigError,
        match=r"^dream\.octaves: expected an integer, "
        r"got '\{a: &a \[",
    ) as e:
        apply_sets(cfg, [f"dream.octaves={bomb}"])
    assert time.perf_counter() - start < NO_BLOW_UP
    one_short_line(e.value)
    with pytest.raises(
        ConfigError, match=r"^zoom\.zoom: the expression has 5,000 characters; at most 1,000"
    ) as e:
        apply_sets(cfg, ["zoom.zoom=" + "[" * 5000])  # a RecursionError with yaml.safe_load
    one_short_line(e.value)
    long_value = "1" * (MAX_SCHEDULE_CHARS + 200)
    with pytest.raises(
        ConfigError,
        match=r"^--set 'zoom\.zoom=1+'\.\.\.: the value is "
        r"20,200 characters; at most 20,100$",
    ) as e:
        apply_sets(cfg, [f"zoom.zoom={long_value}"])
    one_short_line(e.value)


# ------------------------------------------------------------------ 6. long strings


@pytest.mark.parametrize("key", ["zoom", "layers"])
def test_a_100k_schedule_is_refused_quickly_without_echo(key):
    text = "0: " + "1" * 100_000
    start = time.perf_counter()
    with pytest.raises(ConfigError) as e:
        Config.from_dict({"zoom": {key: text}})
    assert time.perf_counter() - start < NO_BLOW_UP
    message = one_short_line(e.value)
    assert message == (
        f"zoom.{key}: schedule has 100,003 characters; at most "
        f"{MAX_SCHEDULE_CHARS:,} characters and {MAX_KEYFRAMES:,} keyframes "
        "are accepted"
    )


def test_too_many_keyframes_are_refused():
    text = ", ".join(f"{i}: 1" for i in range(MAX_KEYFRAMES + 1))
    assert len(text) <= MAX_SCHEDULE_CHARS
    with pytest.raises(ScheduleError, match=f"has {MAX_KEYFRAMES + 1:,} keyframes"):
        parse_schedule(text, "zoom.zoom")
    assert len(parse_schedule(text[: text.rindex(",")], "zoom.zoom").keys) == MAX_KEYFRAMES


@pytest.mark.parametrize(
    "data",
    [
        {"dream": {"model": "x" * 100_000}},  # choices
        {"dream": {"device": "x" * 100_000}},  # pattern
        {"dream": {"octaves": "x" * 100_000}},  # type
        {"dream": {"x" * 100_000: 1}},  # unknown key
        {"x" * 100_000: {}},  # unknown section
        {"dream": "x" * 100_000},  # not a mapping
        {"dream": {"octaves": ["x" * 100_000] * 100_000}},
        {"zoom": {"zoom": "0: 1, 10: " + "x" * 10_000}},
    ],
)
def test_errors_on_100k_values_are_short_single_lines(data):
    with pytest.raises(ConfigError) as e:
        Config.from_dict(data)
    assert "x" * 41 not in one_short_line(e.value)


def test_long_set_items_and_preset_names_are_excerpted():
    for item in ["x" * 100_000, "dreamx" * 1000 + ".step=3"]:
        with pytest.raises(ConfigError) as e:
            apply_sets(Config(), [item])
        one_short_line(e.value)
    with pytest.raises(UserError) as e:
        load_preset("p" * 100_000)
    one_short_line(e.value, 1000)  # the list of available presets follows the excerpt
    with pytest.raises(UserError, match="does not exist") as e:
        load_preset("d/" * 50_000 + ".yaml")  # too long a name for the file system
    one_short_line(e.value, 500)


# ------------------------------------------------------------------ 7. control characters


@pytest.mark.parametrize(
    "bad", ["line1\nline2", "tab\there", "nul\x00", "cr\rlf", "\u2028ls", "\x1b[31mred"]
)
def test_control_characters_never_break_the_line(bad):
    errors = []
    for call in [
        lambda: Config.from_dict({"dream": {"model": bad}}),
        lambda: Config.from_dict({"dream": {bad: 1}}),
        lambda: Config.from_dict({bad: {}}),
        lambda: Config.from_dict({"zoom": {"zoom": f"0: 1, 5: {bad}"}}),
        lambda: Config.from_dict({"zoom": {"layers": f"0: blocks.1, 5:{bad}, 6:"}}),
        lambda: parse_objective(f"blocks.1 + {bad}", CHANNELS),
        lambda: apply_sets(Config(), [f"dream.{bad}=1"]),
        lambda: apply_sets(Config(), [bad]),
        lambda: load_preset(bad),
    ]:
        with pytest.raises(UserError) as e:
            call()
        errors.append(one_short_line(e.value, 1000))
    assert not any(ch in m for m in errors for ch in "\n\r\t\x00\x1b\u2028")


def test_excerpt_is_short_escaped_and_marks_the_cut():
    assert excerpt("four") == "'four'"
    assert excerpt("a" * 100) == "'" + "a" * 40 + "'..."
    assert excerpt("a\nb") == r"'a\nb'"
    assert excerpt("\x00" * 100) == "'" + r"\x00" * 10 + "'..."
    assert excerpt("blocks.99", quote=False) == "blocks.99"
    assert excerpt(NAN) == "nan" and excerpt(None) == "None"
    assert excerpt(10**5000) == "<an integer of 16,610 bits>"
    assert len(excerpt([["x" * 1000] * 1000] * 1000)) <= 43
