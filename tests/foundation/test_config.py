"""Settings: defaults, config.toml, environment overrides, clear errors."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mailbot.config import REPO_ROOT, SECRET_KEYS, ConfigError, Settings, load_settings


def test_config_toml_documents_every_setting_with_its_default():
    documented = tomllib.loads((REPO_ROOT / "config.toml").read_text())
    defaults = Settings().model_dump(mode="json")
    for section, fields in defaults.items():
        for key, value in fields.items():
            dotted = f"{section}.{key}"
            if dotted in SECRET_KEYS:
                assert key not in documented.get(section, {}), f"secret {dotted} must not be in config.toml"
                continue
            assert key in documented.get(section, {}), f"{dotted} is not documented in config.toml"
            shown = documented[section][key]
            assert str(shown) == str(value) or shown == value, f"{dotted}: config.toml says {shown!r}, default is {value!r}"
    text = (REPO_ROOT / "config.toml").read_text()
    for dotted in SECRET_KEYS:
        env = "MAILBOT_" + dotted.upper().replace(".", "__")
        assert env in text, f"config.toml should tell where {dotted} comes from ({env})"


def test_the_shipped_config_loads(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    settings = load_settings(environ={})
    assert settings.smtp.port == 8025
    assert settings.embedded


def test_environment_overrides_the_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[smtp]\nport = 2525\n[guards]\nallow_senders = ["a.example"]\n')
    settings = load_settings(cfg, environ={"MAILBOT_SMTP__PORT": "2600", "MAILBOT_DATABASE__URL": "sqlite:///x.db",
                                           "MAILBOT_GUARDS__ALLOW_SENDERS": '["b.example", "c.example"]'})
    assert settings.smtp.port == 2600
    assert settings.database_url == "sqlite:///x.db"
    assert settings.guards.allow_senders == ["b.example", "c.example"]


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[service]\nvar_dir = "state"\n')
    settings = load_settings(cfg, environ={})
    assert settings.service.var_dir == tmp_path / "state"
    assert settings.outbox_path == tmp_path / "state" / "outbox"
    assert settings.database_url == f"sqlite:///{tmp_path / 'state' / 'mailbot.db'}"


@pytest.mark.parametrize(
    "toml, environ, expected",
    [
        ("[smtp]\nport = 'abc'\n", {}, "bad value for smtp.port = 'abc' (from {file})"),
        ("", {"MAILBOT_SMTP__PORT": "abc"}, "bad value for smtp.port = 'abc' (from environment variable MAILBOT_SMTP__PORT)"),
        ("[smtp]\nprot = 25\n", {}, "unknown setting 'smtp.prot' (from {file})"),
        ("[smtpd]\nport = 25\n", {}, "unknown section [smtpd]"),
        ("", {"MAILBOT_SMTP__PROT": "25"}, "unknown setting 'smtp.prot' (from environment variable MAILBOT_SMTP__PROT)"),
        ("[llm]\napi_key = 'sk-live'\n", {}, "llm.api_key is a secret; remove it from the file and set MAILBOT_LLM__API_KEY"),
        ("[smtp\nport=1", {}, "not valid TOML"),
        ("[web]\nsecure_cookies = 'sometimes'\n", {}, "bad value for web.secure_cookies"),
        ("", {"MAILBOT_PORT": "1"}, "MAILBOT_PORT: environment overrides look like MAILBOT_<SECTION>__<KEY>"),
    ],
)
def test_a_bad_value_gives_one_line_naming_key_and_source(tmp_path, toml, environ, expected):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ=environ)
    message = str(info.value)
    assert expected.format(file=cfg) in message
    assert "\n" not in message


def test_a_secret_value_is_never_echoed_in_an_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={"MAILBOT_LLM__TIMEOUT_SECONDS": "-1", "MAILBOT_LLM__API_KEY": "sk-very-secret"})
    assert "sk-very-secret" not in str(info.value)


def _mailbot(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "mailbot_cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=60)


def test_config_show_masks_secrets(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "MAILBOT_LLM__API_KEY": "sk-very-secret", "MAILBOT_RELAY__PASSWORD": "hunter2",
           "MAILBOT_DATABASE__URL": "postgresql+psycopg://bob:pgpass@db/mailbot"}
    result = _mailbot("config", "show", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for secret in ("sk-very-secret", "hunter2", "pgpass"):
        assert secret not in result.stdout
    assert 'api_key = "********"' in result.stdout
    assert "bob:********@db" in result.stdout


def test_bad_config_stops_the_cli_with_one_line_and_exit_2(tmp_path):
    (tmp_path / "config.toml").write_text("[smtp]\nport = 'abc'\n")
    result = _mailbot("config", "show", env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "smtp.port" in lines[0] and "config.toml" in lines[0]
