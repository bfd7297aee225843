"""Settings read from the environment: the database and the cache."""

import runpy
from pathlib import Path

import pytest

SETTINGS = Path(__file__).resolve().parent.parent / "settings.py"


@pytest.fixture
def environment(monkeypatch):
    for name in ("DATABASE_URL", "REDIS_URL", "TEST_DATABASE_NAME"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_defaults_are_sqlite_and_a_cache_per_process(environment):
    settings = runpy.run_path(str(SETTINGS))

    assert settings["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert settings["CACHES"]["default"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"


def test_database_url_and_redis_url_switch_to_postgresql_and_a_shared_cache(environment):
    environment.setenv("DATABASE_URL", "postgres://evals:s%40cret@db.internal:5433/playground")
    environment.setenv("TEST_DATABASE_NAME", "test_mine")
    environment.setenv("REDIS_URL", "redis://cache.internal:6379/2")

    settings = runpy.run_path(str(SETTINGS))

    database = settings["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"]) == ("db.internal", 5433, "playground")
    assert (database["USER"], database["PASSWORD"]) == ("evals", "s@cret")
    assert database["CONN_MAX_AGE"] == 60 and database["TEST"] == {"NAME": "test_mine"}
    assert settings["CACHES"]["default"] == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://cache.internal:6379/2",
    }
