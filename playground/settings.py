"""Settings for the evaluation playground, all read from the environment.

The embedded default is SQLite (WAL) plus one `run_worker` process on
127.0.0.1. Scale-out changes only environment variables: point DATABASE_URL at
PostgreSQL and start as many workers as you like.

DEBUG is off unless DJANGO_DEBUG says otherwise, and then a secret key is
required (DJANGO_SECRET_KEY, or the file DJANGO_SECRET_KEY_FILE names, by
default `.secret-key`, which `make run` creates). DJANGO_HTTPS (on when DEBUG
is off) turns on the settings that only make sense over TLS: secure cookies,
the redirect to https and HSTS; `make run`, a plain-http server on 127.0.0.1,
turns it off. README.md, "Deploy", lists every variable.
"""

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

if TYPE_CHECKING:
    from django.http import HttpRequest

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    """A comma-separated variable as a list, blanks dropped."""
    return [value.strip() for value in os.environ.get(name, default).split(",") if value.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)

# Known to everyone who has read this file: accepted with DEBUG on only.
PUBLIC_DEV_SECRET_KEY = "dev-only-insecure-key-set-DJANGO_SECRET_KEY-in-production"
SECRET_KEY_FILE = Path(os.environ.get("DJANGO_SECRET_KEY_FILE") or BASE_DIR / ".secret-key")


def secret_key() -> str:
    """DJANGO_SECRET_KEY, else the key file; with DEBUG off, no key (or the
    public development key) refuses to start rather than sign sessions with it."""
    key = os.environ.get("DJANGO_SECRET_KEY", "").strip()
    if not key and SECRET_KEY_FILE.is_file():
        key = SECRET_KEY_FILE.read_text().strip()
    if key and key != PUBLIC_DEV_SECRET_KEY:
        return key
    if DEBUG:
        return PUBLIC_DEV_SECRET_KEY
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is empty or the public development key, and DEBUG is off. "
        "Set DJANGO_SECRET_KEY to a long random value (e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`), "
        "or DJANGO_DEBUG=1 for local development."
    )


SECRET_KEY = secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# ---- HTTPS ---------------------------------------------------------------------
# Behind a proxy that terminates TLS (a load balancer, nginx, a PaaS router) and
# sets X-Forwarded-Proto; exactly one proxy, which appends the client's address
# to X-Forwarded-For (login lockouts and API throttles key on that address).
BEHIND_TLS_PROXY = env_bool("DJANGO_BEHIND_TLS_PROXY")
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Settings that only work when browsers reach the site over https. On by default
# with DEBUG off; `make run` (plain http on 127.0.0.1) and the tests turn them off.
HTTPS = env_bool("DJANGO_HTTPS", not DEBUG)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
# Load balancers probe over plain http.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", 365 * 24 * 3600)) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS

# Content-Security-Policy (django.middleware.csp). No template of ours has an
# inline script or style. CSP.NONCE adds a fresh nonce only to responses whose
# templates ask for one: Django admin's and Swagger UI's (/api/docs/, whose
# inline initialiser is marked in templates/drf_spectacular/swagger_ui.html);
# every other page gets exactly "script-src 'self'; style-src 'self'".
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}

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
    "axes",
    "datasets_app",
    "playground",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files straight from the process, compressed and cached forever (hashed names).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: turns a locked-out login into the 429 page.
    "axes.middleware.AxesMiddleware",
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
                # {{ csp_nonce }}, for the few inline elements the CSP allows (see SECURE_CSP).
                "django.template.context_processors.csp",
                "playground.context_processors.projects",
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

# ---- Login throttling (django-axes) ----------------------------------------------
# Five wrong passwords for one username from one address lock that pair out for
# 15 minutes (429, templates/registration/locked_out.html); the same address may
# still log in as someone else, and the user from elsewhere. Attempts are kept in
# the database, so every web process sees them. Only the login form and admin
# login count: API tokens and sessions do not go through `authenticate`.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429


def forwarded_client_ip(request: "HttpRequest") -> str | None:
    """The client's address as the one TLS proxy saw it: the last entry of
    X-Forwarded-For (entries before it are whatever the client sent)."""
    forwarded = [entry.strip() for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if entry.strip()]
    return forwarded[-1] if forwarded else request.META.get("REMOTE_ADDR")


if BEHIND_TLS_PROXY:
    AXES_CLIENT_IP_CALLABLE = forwarded_client_ip

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# `manage.py collectstatic` copies every static file here (under content-hashed
# names, with gzipped copies) and WhiteNoise serves them, cached for good;
# `make run` runs it on every start, a deployment once per release.
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

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
    # Counted in the default cache (shared through Redis when REDIS_URL is set;
    # per process otherwise). Over the rate: 429 with Retry-After.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": os.environ.get("PLAYGROUND_API_RATE", "600/min"),
        "anon": os.environ.get("PLAYGROUND_API_ANON_RATE", "60/min"),
        # For ScopedRateThrottle with throttle_scope = "run_start" (starting runs).
        "run_start": os.environ.get("PLAYGROUND_RUN_START_RATE", "30/min"),
    },
    # Throttles key anonymous clients on their address: behind the proxy, the
    # last X-Forwarded-For entry; otherwise the socket's address (a client-sent
    # X-Forwarded-For must not give it a fresh allowance).
    "NUM_PROXIES": 1 if BEHIND_TLS_PROXY else 0,
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
    # Two choice sets share the field name "status": named here instead of by a hash.
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "datasets_app.models.DatasetRun.Status",
        "SpanStatusEnum": ["ok", "error", "unset"],
    },
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
# Prices per million tokens by model, for a run's cost: {"gpt-4o-mini": {"input": 0.15, "output": 0.6}}.
PLAYGROUND_MODEL_PRICES = json.loads(os.environ.get("PLAYGROUND_MODEL_PRICES", "{}"))

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
