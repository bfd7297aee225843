"""Settings for the test suite (pytest.ini's DJANGO_SETTINGS_MODULE).

The production settings, read with the environment a test run needs. The
variables are set here, before `playground.settings` reads them (pytest-django
loads settings before any conftest.py runs), and stay in os.environ, so the
`run_worker` processes that tests start (which inherit DJANGO_SETTINGS_MODULE)
read the same. A variable already set wins.

* DEBUG stays off (pytest-django turns it off for tests anyway), with a key
  that is only for tests;
* DJANGO_HTTPS=0: the test client and the live server speak plain http, so no
  redirect to https and no secure-only cookies (test_deploy.py checks those
  in a subprocess with the production environment);
* API throttle rates no test reaches (test_login_throttle.py checks a real one);
* static files straight from the app directories (no collectstatic first);
* django-axes off: `client.login()` calls `authenticate()` without a request,
  which the lockout backend refuses; test_login_throttle.py turns it on.
"""

import os

TEST_ENVIRONMENT = {
    "DJANGO_SECRET_KEY": "tests-only-secret-key-never-used-by-a-server-0123456789abcdef",
    "DJANGO_HTTPS": "0",
    "PLAYGROUND_API_RATE": "1000000/min",
    "PLAYGROUND_API_ANON_RATE": "1000000/min",
    "PLAYGROUND_RUN_START_RATE": "1000000/min",
}
for _name, _value in TEST_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)

from playground.settings import *  # noqa: E402, F403

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# WhiteNoise still serves /static/, found through the finders at request time.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

AXES_ENABLED = False
