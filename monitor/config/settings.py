"""Process settings from the environment (MLMON_*), as opposed to the YAML configuration."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the database and the configuration file are, and where to listen."""

    model_config = SettingsConfigDict(env_prefix="MLMON_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./mlmon.db",
        description="SQLAlchemy URL; postgresql+psycopg://user@host/db in production",
    )
    config: Path = Field(default=Path("mlmon.yaml"), description="path of the YAML configuration")
    listen: str = Field(default="127.0.0.1:8000", description="host:port of the HTTP API")
    external_url: str | None = Field(default=None, description="URL users reach mlmon at (alert links)")
    log_level: str = "info"
    leader_poll_seconds: float = Field(default=5.0, gt=0)
    worker_heartbeat_seconds: float = Field(default=10.0, gt=0, description="how often a worker says it is alive")
    worker_stalled_seconds: float = Field(
        default=60.0, gt=0, description="silence after which a worker's running job is retried elsewhere"
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"MLMON_LISTEN: expected host:port such as 127.0.0.1:8000, got {value!r}")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def base_url(self) -> str:
        return self.external_url or f"http://{self.listen}"
