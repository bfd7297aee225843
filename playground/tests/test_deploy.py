"""Production settings, checked the way a server starts: `manage.py` in a subprocess
whose environment holds only what a deployment sets (the test run's own settings,
playground/settings_test.py, are not involved)."""

import json
import os
import re
import secrets
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

REPO = Path(settings.BASE_DIR)
PUBLIC_KEY = "dev-only-insecure-key-set-DJANGO_SECRET_KEY-in-production"


def random_key() -> str:
    return secrets.token_urlsafe(50)[:50]


def clean_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    """Nothing from the test run's environment but PATH; no key file to fall back on."""
    return {
        "PATH": os.environ["PATH"],
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SECRET_KEY_FILE": str(tmp_path / "no-such-key-file"),
        "SQLITE_PATH": str(tmp_path / "db.sqlite3"),
        **variables,
    }


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def settings_in(env: dict[str, str], *names: str) -> dict:
    """The named settings as a process started with `env` sees them."""
    script = textwrap.dedent(
        f"""
        import json, django
        from django.conf import settings
        django.setup()
        print(json.dumps({{name: getattr(settings, name, None) for name in {list(names)!r}}}, default=str))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**env, "DJANGO_SETTINGS_MODULE": "playground.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_check_deploy_is_clean_with_a_key_the_hosts_and_postgresql(tmp_path):
    env = clean_env(
        tmp_path,
        DJANGO_SECRET_KEY=random_key(),
        DJANGO_ALLOWED_HOSTS="example.com",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/test",
    )
    done = manage(env, "check", "--deploy")
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("key", [None, "", "   ", PUBLIC_KEY], ids=["unset", "empty", "blank", "public-default"])
def test_without_a_real_key_and_debug_off_it_refuses_to_start(tmp_path, key):
    variables = {"DJANGO_ALLOWED_HOSTS": "example.com"}
    if key is not None:
        variables["DJANGO_SECRET_KEY"] = key
    done = manage(clean_env(tmp_path, **variables), "check")
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr
    assert "DJANGO_SECRET_KEY is empty or the public development key, and DEBUG is off" in done.stderr


def test_debug_is_off_by_default_and_the_https_settings_on(tmp_path):
    values = settings_in(
        clean_env(tmp_path, DJANGO_SECRET_KEY=random_key()),
        "DEBUG",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_SSL_REDIRECT",
        "SECURE_REDIRECT_EXEMPT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SECURE_PROXY_SSL_HEADER",
        "ALLOWED_HOSTS",
        "CSRF_TRUSTED_ORIGINS",
    )
    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"] and values["SECURE_SSL_REDIRECT"]
    assert values["SECURE_REDIRECT_EXEMPT"] == ["^healthz$"]
    assert values["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] and values["SECURE_HSTS_PRELOAD"]
    assert values["SECURE_PROXY_SSL_HEADER"] is None  # only behind a proxy that says so
    assert values["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost"]
    assert values["CSRF_TRUSTED_ORIGINS"] == []


def test_local_http_proxy_hosts_and_origins_come_from_the_environment(tmp_path):
    values = settings_in(
        clean_env(
            tmp_path,
            DJANGO_SECRET_KEY=random_key(),
            DJANGO_HTTPS="0",
            DJANGO_BEHIND_TLS_PROXY="1",
            DJANGO_ALLOWED_HOSTS="evals.example.com, .internal ,",
            DJANGO_CSRF_TRUSTED_ORIGINS="https://evals.example.com,https://admin.example.com",
        ),
        "DEBUG",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_PROXY_SSL_HEADER",
        "ALLOWED_HOSTS",
        "CSRF_TRUSTED_ORIGINS",
    )
    assert values["DEBUG"] is False
    assert not (values["SESSION_COOKIE_SECURE"] or values["CSRF_COOKIE_SECURE"] or values["SECURE_SSL_REDIRECT"])
    assert values["SECURE_HSTS_SECONDS"] == 0
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["ALLOWED_HOSTS"] == ["evals.example.com", ".internal"]
    assert values["CSRF_TRUSTED_ORIGINS"] == ["https://evals.example.com", "https://admin.example.com"]


def test_debug_on_runs_without_a_key_and_without_the_https_settings(tmp_path):
    values = settings_in(clean_env(tmp_path, DJANGO_DEBUG="1"), "DEBUG", "SECRET_KEY", "SECURE_SSL_REDIRECT")
    assert values == {"DEBUG": True, "SECRET_KEY": PUBLIC_KEY, "SECURE_SSL_REDIRECT": False}


def test_bin_secret_key_makes_a_private_key_file_that_settings_read(tmp_path):
    key_file = tmp_path / "secret-key"
    env = {"PATH": os.environ["PATH"], "DJANGO_SECRET_KEY_FILE": str(key_file)}
    first = subprocess.run([str(REPO / "bin" / "secret-key")], env=env, capture_output=True, text=True, check=True)
    again = subprocess.run([str(REPO / "bin" / "secret-key")], env=env, capture_output=True, text=True, check=True)
    key = first.stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9]{64}", key)
    assert again.stdout.strip() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    values = settings_in({**clean_env(tmp_path), "DJANGO_SECRET_KEY_FILE": str(key_file)}, "SECRET_KEY", "DEBUG")
    assert values == {"SECRET_KEY": key, "DEBUG": False}


def test_collected_static_files_are_served_by_whitenoise_with_debug_off(tmp_path):
    """As `make run` and a deployment serve them: collectstatic (hashed, compressed
    names) and WhiteNoise in the WSGI process, with the production settings."""
    script = textwrap.dedent(
        """
        import json, re, sys
        import django
        from django.conf import settings
        django.setup()
        from django.core.management import call_command
        from django.test import Client, override_settings

        with override_settings(STATIC_ROOT=sys.argv[1]):
            call_command("collectstatic", interactive=False, verbosity=0)
            client = Client()
            page = client.get("/accounts/login/", secure=True)
            urls = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.content.decode())
            static = {}
            for url in urls:
                response = client.get(url, secure=True, headers={"Accept-Encoding": "gzip"})
                static[url] = [response.status_code, response.get("Cache-Control"), response.get("Content-Encoding")]
        print(json.dumps({"debug": settings.DEBUG, "page": page.status_code, "static": static}))
        """
    )
    env = clean_env(
        tmp_path,
        DJANGO_SECRET_KEY=random_key(),
        DJANGO_ALLOWED_HOSTS="testserver",
        DJANGO_SETTINGS_MODULE="playground.settings",
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "static")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    served = json.loads(done.stdout.strip().splitlines()[-1])
    assert served["debug"] is False and served["page"] == 200
    names = " ".join(served["static"])
    assert "/static/css/app." in names and "/static/django_htmx/htmx-2.min." in names and "/static/js/app." in names
    for url, (status, cache_control, encoding) in served["static"].items():
        assert status == 200, url
        assert "immutable" in cache_control, (url, cache_control)  # a content-hashed name
        assert encoding == "gzip", url


def test_the_pages_css_and_htmx_answer_with_debug_off(browser_client, capitals):
    """The test run's own settings (DEBUG off, files found in the apps): every
    stylesheet and script a page links to is there, htmx from django-htmx's files."""
    assert not settings.DEBUG
    html = browser_client.get(reverse("dataset-detail", args=[capitals.id])).content.decode()
    urls = re.findall(r'<(?:link rel="stylesheet" href|script src)="([^"]+)"', html)
    assert any("django_htmx/htmx" in url for url in urls) and any(url.endswith(".css") for url in urls)
    for url in urls:
        response = browser_client.get(url)
        assert response.status_code == 200, url
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert body, url
