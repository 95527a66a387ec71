"""The [pid] section of node.toml: defaults, validation messages, environment overrides."""

from __future__ import annotations

import pytest

from node.config import SECRET_ENV, ConfigError, parse_config, starter_toml

NODE = {"id": "demo", "name": "Demo", "base_url": "http://127.0.0.1:5000"}


def problems(pid: dict) -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse_config({"node": NODE, "pid": pid}, env=False)
    return [f"{p.key}: {p.why}" for p in e.value.problems]


def test_defaults_mint_test_arks():
    pid = parse_config({"node": NODE}, env=False).pid
    assert (pid.scheme, pid.naan, pid.shoulder, pid.blade_length) == ("ark", "99999", "fk4", 8)
    assert pid.datacite_url == "https://api.test.datacite.org"
    assert pid.datacite_prefix == ""
    assert "[pid]" in starter_toml()


def test_every_pid_problem_is_explained():
    got = problems(
        {
            "scheme": "handle",
            "naan": "1234",
            "shoulder": "Fk4",
            "blade_length": 30,
            "datacite_url": "https://user:pw@api.datacite.org",
            "datacite_prefix": "10.1/x",
        }
    )
    assert got == [
        "pid.scheme: 'handle' is not one of ark, datacite",
        "pid.naan: '1234' must be 5 digits (99999 is the test NAAN)",
        "pid.shoulder: 'Fk4' must be betanumeric letters (bcdfghjkmnpqrstvwxz) followed by one "
        "digit, e.g. 'fk4' (the ARK first-digit shoulder convention)",
        "pid.blade_length: NAAN/shoulder plus 30 blade characters make 38; the NOID check "
        "character guarantees its error detection only up to 27",
        "pid.datacite_url: holds credentials: use "
        "FAIRNODE_DATACITE_USERNAME/FAIRNODE_DATACITE_PASSWORD",
        "pid.datacite_prefix: '10.1/x' is not a DOI prefix (10.NNNN, e.g. 10.80000)",
    ]
    for shoulder in ("fk", "4", "f4k4", "fl4", "fk44"):
        assert any(p.startswith("pid.shoulder:") for p in problems({"shoulder": shoulder}))
    assert problems({"blade_length": 0}) == ["pid.blade_length: 0 must be ≥ 1"]
    assert problems({"scheme": "datacite"}) == [
        'pid.datacite_prefix: required when scheme = "datacite"'
    ]
    assert problems({"datacite_url": "ftp://x"}) == [
        "pid.datacite_url: 'ftp://x' is not an http(s) URL"
    ]


def test_environment_overrides_settings_but_never_reads_credentials_as_settings(monkeypatch):
    monkeypatch.setenv("FAIRNODE_PID_SHOULDER", "b7")
    monkeypatch.setenv("FAIRNODE_PID_BLADE_LENGTH", "6")
    monkeypatch.setenv("FAIRNODE_DATACITE_PASSWORD", "not-a-setting")
    pid = parse_config({"node": NODE}).pid
    assert (pid.shoulder, pid.blade_length) == ("b7", 6)
    assert {"FAIRNODE_DATACITE_USERNAME", "FAIRNODE_DATACITE_PASSWORD"} <= set(SECRET_ENV)
