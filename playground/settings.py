"""Settings for the evaluation playground.

The embedded default is SQLite (WAL) plus one `run_worker` process on
127.0.0.1. Scale-out changes only environment variables: point DATABASE_URL at
PostgreSQL and start as many workers as you like.
"""

import json
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).lower() in {"1", "true", "yes", "on"}


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-insecure-key-set-DJANGO_SECRET_KEY-in-production")
DEBUG = env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "datasets_app",
    "playground",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "playground.urls"
WSGI_APPLICATION = "playground.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


if os.environ.get("DATABASE_URL"):
    DATABASES = {
        "default": dj_database_url.parse(
            os.environ["DATABASE_URL"],
            conn_max_age=60,
            test_options={"NAME": os.environ.get("TEST_DATABASE_NAME", "test_playground")},
        )
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            # WAL lets the web server read while the worker writes; IMMEDIATE
            # transactions make writers queue instead of failing to upgrade locks.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                # A 64 MB page cache: results are indexed by random UUIDs, and with
                # SQLite's default 2 MB, inserts slow down as a large run's indexes grow.
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                    "PRAGMA busy_timeout=20000; PRAGMA cache_size=-65536;"
                ),
            },
            # A file (not :memory:) so that live-server tests, worker threads
            # and the test process all see the same database.
            # One file per test process, so parallel test sessions never share it.
            "TEST": {"NAME": str(BASE_DIR / f".test-db-{os.getpid()}.sqlite3")},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The run page caches its latency figures for a few seconds (`runs/summary.py`).
# Per process by default; with REDIS_URL every web process shares one cache.
if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["REDIS_URL"]}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "datasets"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

# JSON bodies larger than this are refused with 413 (user JSON is untrusted).
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("PLAYGROUND_MAX_BODY_BYTES", 5 * 1024 * 1024))
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's own JSON parser ignores DATA_UPLOAD_MAX_MEMORY_SIZE; this one answers 413.
    "DEFAULT_PARSER_CLASSES": ["datasets_app.api.parsers.LimitedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "datasets_app.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "LLM evaluation playground API",
    "DESCRIPTION": "Datasets, items, runs and results. The contract in prose: docs/api.md in the repository.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# ---- Run engine -----------------------------------------------------------
# Items per chunk: the unit that one worker claims (scale-out, takeover).
PLAYGROUND_CHUNK_SIZE = int(os.environ.get("PLAYGROUND_CHUNK_SIZE", 500))
# A chunk whose lease is not renewed for this long is taken over by another worker.
# Holders renew five times per period, so a dead worker's chunks move on within it.
PLAYGROUND_LEASE_SECONDS = float(os.environ.get("PLAYGROUND_LEASE_SECONDS", 6))
# A worker whose event loop user code blocks this long exits (its supervisor restarts it).
PLAYGROUND_LOOP_STALL_SECONDS = float(os.environ.get("PLAYGROUND_LOOP_STALL_SECONDS", 30))
PLAYGROUND_DEFAULT_ITEM_TIMEOUT = float(os.environ.get("PLAYGROUND_ITEM_TIMEOUT", 60))
PLAYGROUND_MAX_OUTPUT_BYTES = int(os.environ.get("PLAYGROUND_MAX_OUTPUT_BYTES", 1024 * 1024))
# Retries of transient failures wait base·2^(n-1) seconds (capped), half of it jittered.
PLAYGROUND_RETRY_BASE_DELAY = float(os.environ.get("PLAYGROUND_RETRY_BASE_DELAY", 0.5))
PLAYGROUND_RETRY_MAX_DELAY = float(os.environ.get("PLAYGROUND_RETRY_MAX_DELAY", 10))
# Extra targets/scorers: dotted paths to modules that register on import.
PLAYGROUND_PLUGIN_MODULES = [m for m in os.environ.get("PLAYGROUND_PLUGIN_MODULES", "").split(",") if m]
# Extra targets/scorers by dotted path: {"agent/support-bot": "myproject.bots.answer"}.
PLAYGROUND_TARGETS = json.loads(os.environ.get("PLAYGROUND_TARGETS", "{}"))
PLAYGROUND_SCORERS = json.loads(os.environ.get("PLAYGROUND_SCORERS", "{}"))
# `openinference.project.name` of exported traces (the project Phoenix files them under).
PLAYGROUND_OTEL_PROJECT = os.environ.get("PLAYGROUND_OTEL_PROJECT", "playground")
# Where a result's trace link points; "{trace_id}" is replaced. Empty: built-in page.
PLAYGROUND_TRACE_URL_TEMPLATE = os.environ.get("PLAYGROUND_TRACE_URL_TEMPLATE", "")

# OpenAI-compatible model target and LLM judges.
OPENAI_BASE_URL = os.environ.get("OPENAI_BASE_URL", "")
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "")
OPENAI_MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
OPENAI_SYSTEM_PROMPT = os.environ.get("OPENAI_SYSTEM_PROMPT", "You are a helpful assistant.")

# HTTP endpoint target.
HTTP_TARGET_URL = os.environ.get("HTTP_TARGET_URL", "")
HTTP_TARGET_HEADERS = os.environ.get("HTTP_TARGET_HEADERS", "")  # JSON object

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "datasets_app": {"handlers": ["console"], "level": os.environ.get("PLAYGROUND_LOG_LEVEL", "INFO")},
    },
}
