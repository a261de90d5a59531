"""Configuration: discovery, strict keys with suggestions, per-file settings."""

import pytest

from conftest import coco
from labellint import config, registry
from labellint.errors import ConfigError
from labellint.findings import Severity

RULES = registry.by_code()


@pytest.fixture(autouse=True)
def _fresh_cache():
    config.find.cache_clear()
    yield
    config.find.cache_clear()


def settings(tmp_path, text, name="pyproject.toml", rel="data/ann.json", **kw):
    (tmp_path / name).write_text(text)
    target = tmp_path / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("{}")
    cfg = config.load_for(target, RULES)
    return cfg, config.settings_for(cfg, RULES, rel, target, **kw)


def test_pyproject_found_by_walking_up(tmp_path):
    cfg, s = settings(tmp_path, '[tool.labellint]\nselect = ["LL1"]\nfail-on = "warning"\n'
                      '[tool.labellint.rules.LL105]\ntolerance_px = 2\n')
    assert cfg.source == tmp_path / "pyproject.toml"
    assert {r.code for r in s.rules} == {c for c in RULES if c.startswith("LL1")}
    assert s.options["LL105"]["tolerance_px"] == 2.0 and isinstance(s.options["LL105"]["tolerance_px"], float)
    assert cfg.fail_on == Severity.WARNING


def test_pyproject_without_section_is_passed_over(tmp_path):
    (tmp_path / "labellint.toml").write_text('ignore = ["LL105"]\n')
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (sub / "a.json").write_text("{}")
    cfg = config.load_for(sub / "a.json", RULES)
    assert cfg.source == tmp_path / "labellint.toml" and cfg.ignore == ["LL105"]


def test_labellint_toml_wins_in_the_same_folder(tmp_path):
    (tmp_path / "labellint.toml").write_text('ignore = ["LL010"]\n')
    cfg, _ = settings(tmp_path, '[tool.labellint]\nignore = ["LL105"]\n')
    assert cfg.ignore == ["LL010"]


@pytest.mark.parametrize("text, message, line", [
    ('[tool.labellint]\nselcet = ["LL1"]\n', "unknown key 'selcet' (did you mean 'select'?)", 2),
    ('[tool.labellint]\nignore = ["LL1055"]\n', "unknown rule code 'LL1055' in ignore (did you mean 'LL105'?)", 2),
    ('[tool.labellint]\n\n[tool.labellint.rules.LL105]\ntolerance = 2\n',
     "unknown option 'tolerance' for LL105 (did you mean 'tolerance_px'?)", 4),
    ('[tool.labellint.rules.LL105]\ntolerance_px = "2"\n', "must be float", 2),
    ('[tool.labellint]\nfail-on = "fatal"\n', "unknown severity", 2),
    ('[tool.labellint]\nseverity = { LL105 = "loud" }\n', "unknown severity", None),
])
def test_strict_config_errors_suggest_and_locate(tmp_path, text, message, line):
    with pytest.raises(ConfigError) as info:
        settings(tmp_path, text)
    err = info.value
    assert message in err.message
    assert err.path.endswith("pyproject.toml")
    if line is not None:
        assert err.line == line


def test_toml_syntax_error_has_line_and_column(tmp_path):
    with pytest.raises(ConfigError) as info:
        settings(tmp_path, '[tool.labellint]\nselect = ["LL1"\n')
    assert info.value.line is not None and info.value.column is not None
    assert "invalid TOML" in info.value.one_line()


def test_per_file_ignores_and_severity_overrides(tmp_path):
    text = ('[tool.labellint]\nextend-select = []\n[tool.labellint.per-file-ignores]\n"data/*.json" = ["LL105"]\n'
            '[tool.labellint.severity]\nLL010 = "warning"\n')
    _, s = settings(tmp_path, text)
    assert "LL105" not in {r.code for r in s.rules}
    assert s.severity["LL010"] == Severity.WARNING
    _, s2 = settings(tmp_path, text, rel="other/ann.json")
    assert "LL105" in {r.code for r in s2.rules}


def test_cli_select_overrides_and_ignore_extends(tmp_path):
    _, s = settings(tmp_path, '[tool.labellint]\nignore = ["LL010"]\n', cli_select=["LL0"], cli_ignore=["LL011"])
    codes = {r.code for r in s.rules}
    assert "LL010" not in codes and "LL011" not in codes and "LL105" not in codes and "LL012" in codes
