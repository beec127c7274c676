"""Settings: documented defaults, overridden by ``config.toml``, then by ``MAILBOT_*``.

Precedence, lowest first:

1. the defaults declared on the models below (``config.toml`` at the repository
   root repeats every one of them with a comment);
2. the TOML file named by ``MAILBOT_CONFIG`` (default ``./config.toml`` when it
   exists);
3. environment variables ``MAILBOT_<SECTION>__<KEY>``, e.g.
   ``MAILBOT_DATABASE__URL``.

Secrets (fields typed ``SecretStr``) are read from the environment only; a
secret written into the TOML file stops start-up, because config files end up
in repositories and backups.  Every problem -- an unknown key, a wrong type, a
secret in the file -- is reported as one :class:`ConfigError` line naming the
key and where its value came from.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

ENV_PREFIX = "MAILBOT_"
CONFIG_ENV = "MAILBOT_CONFIG"
REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(Exception):
    """A configuration problem, worded as the one line an operator needs."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ServiceSettings(_Section):
    domain: str = Field("mailbot.localhost", min_length=1)
    name: str = "mailbot"
    ask_address: str = "ask"
    lookup_address: str = "lookup"
    jobs_address: str = "jobs"
    extra_domains: list[str] = []
    var_dir: Path = Path("var")
    public_url: str = "http://127.0.0.1:8080"


class DatabaseSettings(_Section):
    url: str = ""
    pool_size: int = Field(5, ge=1)
    echo: bool = False


class BrokerSettings(_Section):
    url: str = ""
    namespace: str = Field("mailbot", min_length=1)
    embedded_threads: int = Field(2, ge=1, le=64)
    draft_processes: int = Field(1, ge=0, le=16)
    reconcile_seconds: int = Field(60, ge=5)
    stuck_after_seconds: int = Field(120, ge=5)


class SmtpSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8025, ge=0, le=65535)
    hostname: str = ""
    max_message_size: int = Field(10 * 1024 * 1024, ge=1024)
    max_recipients: int = Field(20, ge=1)
    max_line_length: int = Field(10_000, ge=998)
    lmtp: bool = False
    tls_cert: str = ""
    tls_key: str = ""
    require_starttls: bool = False
    auth_username: str = ""
    auth_password: SecretStr | None = None


class ImapSettings(_Section):
    host: str = ""
    port: int = Field(993, ge=1, le=65535)
    ssl: bool = True
    username: str = ""
    password: SecretStr | None = None
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    idle_seconds: int = Field(540, ge=10, le=600)
    max_backoff_seconds: int = Field(300, ge=1)


class RelaySettings(_Section):
    host: str = ""
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = False
    ssl: bool = False
    username: str = ""
    password: SecretStr | None = None
    timeout_seconds: float = Field(30.0, gt=0)
    max_attempts: int = Field(8, ge=1)


class OutboxSettings(_Section):
    path: str = ""


class WebSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    session_secret: SecretStr | None = None
    secure_cookies: Literal["auto", "always", "never"] = "auto"
    session_hours: int = Field(12, ge=1)
    sla_hours: int = Field(24, ge=1)
    login_attempts_per_minute: int = Field(5, ge=1)
    login_retry_seconds: int = Field(30, ge=1)
    trusted_proxies: list[str] = []
    metrics_hosts: list[str] = ["127.0.0.1", "::1"]
    page_size: int = Field(50, ge=5, le=500)


class LlmSettings(_Section):
    base_url: str = ""
    model: str = ""
    api_key: SecretStr | None = None
    timeout_seconds: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0, le=10)
    temperature: float = Field(0.1, ge=0, le=2)
    tools: bool = True                     # offer the knowledge base as tool calls (falls back when unsupported)
    max_tool_rounds: int = Field(6, ge=0, le=20)


class GuardSettings(_Section):
    daily_reply_cap: int = Field(10, ge=1)
    allow_senders: list[str] = []
    trusted_authserv_id: str = ""
    honour_spam_headers: bool = True
    max_attachment_size: int = Field(5 * 1024 * 1024, ge=0)
    max_attachments: int = Field(20, ge=0)


class CodeSettings(_Section):
    data_dir: Path = Path("data/codesets")
    cpt_file: str = ""
    ncci_dir: str = ""
    load_on_serve: bool = True
    instant_facts_in_ack: bool = True   # the acknowledgement states what the code sets say about named codes


class CommandSettings(_Section):
    max_codes: int = Field(20, ge=1, le=200)
    max_search_words: int = Field(12, ge=1, le=100)
    search_limit: int = Field(10, ge=1, le=50)


class JobSettings(_Section):
    employer_senders: list[str] = []
    digest_hour_utc: int = Field(7, ge=0, le=23)
    weekly_digest_weekday: int = Field(0, ge=0, le=6)
    skip_empty_digests: bool = True
    bounce_threshold: int = Field(3, ge=1)
    confirm_hours: int = Field(72, ge=1)
    max_jobs_per_digest: int = Field(50, ge=1)
    link_secret: SecretStr | None = None   # signs subscriber links; falls back to web.session_secret


class Settings(_Section):
    service: ServiceSettings = ServiceSettings()
    database: DatabaseSettings = DatabaseSettings()
    broker: BrokerSettings = BrokerSettings()
    smtp: SmtpSettings = SmtpSettings()
    imap: ImapSettings = ImapSettings()
    relay: RelaySettings = RelaySettings()
    outbox: OutboxSettings = OutboxSettings()
    web: WebSettings = WebSettings()
    llm: LlmSettings = LlmSettings()
    guards: GuardSettings = GuardSettings()
    codes: CodeSettings = CodeSettings()
    commands: CommandSettings = CommandSettings()
    jobs: JobSettings = JobSettings()

    # -- derived values, so callers never rebuild them -----------------------

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL; the embedded default is a SQLite file in var/."""
        return self.database.url or f"sqlite:///{self.service.var_dir / 'mailbot.db'}"

    @property
    def embedded(self) -> bool:
        """True when no broker is configured: actors run inside this process."""
        return not self.broker.url

    @property
    def outbox_path(self) -> Path:
        return Path(self.outbox.path) if self.outbox.path else self.service.var_dir / "outbox"

    @property
    def domains(self) -> list[str]:
        return [self.service.domain.lower(), *(d.lower() for d in self.service.extra_domains)]

    def service_address(self, local: str) -> str:
        return f"{local}@{self.service.domain}"


SECRET_KEYS = frozenset(
    f"{section}.{name}"
    for section, model in Settings.model_fields.items()
    for name, field in model.annotation.model_fields.items()  # type: ignore[union-attr]
    if "SecretStr" in str(field.annotation)
)


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Build the effective :class:`Settings`.

    ``path`` defaults to ``$MAILBOT_CONFIG`` or ``./config.toml`` if present;
    ``environ`` defaults to ``os.environ``; ``overrides`` (dotted keys, used by
    tests and the CLI) win over both.  Raises :class:`ConfigError`.
    """
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}

    file_path = _config_path(path, environ)
    base_dir = Path.cwd()
    if file_path is not None:
        base_dir = file_path.resolve().parent
        for key, value in _read_toml(file_path).items():
            if key in SECRET_KEYS:
                env_name = ENV_PREFIX + key.upper().replace(".", "__")
                raise ConfigError(
                    f"{file_path}: {key} is a secret; remove it from the file and set {env_name} in the environment"
                )
            _put(values, key, value)
            sources[key] = str(file_path)

    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        parts = name[len(ENV_PREFIX):].lower().split("__")
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"{name}: environment overrides look like MAILBOT_<SECTION>__<KEY>, e.g. MAILBOT_DATABASE__URL")
        key = ".".join(parts)
        _put(values, key, _env_value(raw))
        sources[key] = f"environment variable {name}"

    for key, value in (overrides or {}).items():
        _put(values, key, value)
        sources[key] = "override"

    try:
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, values, sources)) from None

    # Relative paths are relative to the config file's folder (or cwd).
    service = settings.service
    if not service.var_dir.is_absolute():
        service.var_dir = base_dir / service.var_dir
    if settings.outbox.path and not Path(settings.outbox.path).is_absolute():
        settings.outbox.path = str(base_dir / settings.outbox.path)
    if not settings.codes.data_dir.is_absolute():
        candidate = base_dir / settings.codes.data_dir
        settings.codes.data_dir = candidate if candidate.exists() else REPO_ROOT / settings.codes.data_dir
    return settings


def _config_path(path: str | os.PathLike[str] | None, environ: dict[str, str]) -> Path | None:
    if path is not None:
        chosen = Path(path)
    elif environ.get(CONFIG_ENV):
        chosen = Path(environ[CONFIG_ENV])
    else:
        default = Path.cwd() / "config.toml"
        return default if default.exists() else None
    if not chosen.exists():
        raise ConfigError(f"{chosen}: config file not found (from {'MAILBOT_CONFIG' if path is None else 'the command line'})")
    return chosen


def _read_toml(path: Path) -> dict[str, Any]:
    """Flatten ``[section] key = value`` into ``{"section.key": value}``."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    flat: dict[str, Any] = {}
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: top-level key {section!r} must be a [section] table")
        if section not in Settings.model_fields:
            raise ConfigError(f"{path}: unknown section [{section}] (known: {', '.join(Settings.model_fields)})")
        for key, value in table.items():
            flat[f"{section}.{key}"] = value
    return flat


def _env_value(raw: str) -> Any:
    """Environment values are strings; a JSON list is accepted for list settings."""
    stripped = raw.strip()
    if stripped.startswith("["):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return raw
    return raw


def _put(values: dict[str, dict[str, Any]], key: str, value: Any) -> None:
    section, _, name = key.partition(".")
    values.setdefault(section, {})[name] = value


def _describe(exc: ValidationError, values: dict[str, dict[str, Any]], sources: dict[str, str]) -> str:
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc[:2]) if loc else "?"
    source = sources.get(key, "defaults")
    if error["type"] == "extra_forbidden":
        if len(loc) == 1:
            return f"unknown section {loc[0]!r} (from {source}); known: {', '.join(Settings.model_fields)}"
        return f"unknown setting {key!r} (from {source})"
    shown = values.get(loc[0], {}).get(loc[1]) if len(loc) >= 2 else None
    if key in SECRET_KEYS:
        shown = "***"
    return f"bad value for {key} = {shown!r} (from {source}): {error['msg']}"


def masked(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, secrets shown as set/unset only."""
    data = settings.model_dump(mode="json")
    for key in SECRET_KEYS:
        section, name = key.split(".")
        data[section][name] = "********" if data[section][name] else ""
    data["derived"] = {
        "database_url": _mask_url(settings.database_url),
        "embedded": settings.embedded,
        "outbox_path": str(settings.outbox_path),
    }
    data["database"]["url"] = _mask_url(data["database"]["url"])
    data["broker"]["url"] = _mask_url(data["broker"]["url"])
    return data


def _mask_url(url: str) -> str:
    """Hide a password embedded in a URL (postgresql://user:pw@host/db)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":********"
    return f"{scheme}://{creds}@{host}"
