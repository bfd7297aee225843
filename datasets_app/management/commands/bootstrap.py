"""`manage.py bootstrap`: first-start set-up for the embedded playground.

Creates a local admin account when no user exists (password from
PLAYGROUND_ADMIN_PASSWORD, else generated, printed and kept in a private file
beside the database so later starts can say it again) and seeds a demo
dataset, in the admin's personal project, when there are no datasets. Safe to run on every start.
"""

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from datasets_app import projects, services
from datasets_app.models import Dataset
from datasets_app.services import NewItem

PASSWORD_FILE = Path(settings.BASE_DIR) / ".admin-password"

DEMO_ITEMS: list[NewItem] = [
    {"input": {"question": "What is the capital of France?"}, "expected_output": "Paris"},
    {"input": {"question": "What is the capital of Japan?"}, "expected_output": "Tokyo"},
    {"input": {"question": "What is the capital of Italy?"}, "expected_output": "Rome"},
    {"input": {"question": "What is 2 + 2?"}, "expected_output": "4"},
    {"input": {"question": "Which is the largest planet?"}, "expected_output": "Jupiter"},
    {"input": {"question": "Who is the author of Hamlet?"}, "expected_output": "William Shakespeare"},
    {"input": {"question": "What is the boiling point of water at sea level?"}, "expected_output": "100 °C"},
    {"input": {"question": "What is the speed of light?"}, "expected_output": "299,792 km/s"},
    {"input": {"question": "What is the capital of Australia?"}, "expected_output": "Canberra"},
    {"input": {"question": "Will this <script>alert('xss')</script> render?"}, "expected_output": "No"},
    {
        "input": {"question": "What is the capital of Peru?", "user_name": "Ana", "someKey": [1, 2]},
        "expected_output": "Lima",
        "context": {"delayMs": 1200},
    },
    {"input": {"question": "Please fail on purpose"}, "expected_output": "an error"},
]


class Command(BaseCommand):
    help = "Create the local admin account and demo data on first start."

    def handle(self, *args: Any, **options: Any) -> None:
        self._ensure_admin()
        self._ensure_demo_data()

    def _ensure_admin(self) -> None:
        User = get_user_model()
        username = os.environ.get("PLAYGROUND_ADMIN_USER", "admin")
        if User.objects.exists():
            if PASSWORD_FILE.exists() and User.objects.filter(username=username).exists():
                self.stdout.write(f"Log in as '{username}' with the password in {PASSWORD_FILE}")
            else:
                self.stdout.write(f"Log in with your account (reset a password: manage.py changepassword {username}).")
            return
        from_env = os.environ.get("PLAYGROUND_ADMIN_PASSWORD")
        password = from_env or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if from_env:
            self.stdout.write(self.style.SUCCESS(f"Created admin '{username}' with PLAYGROUND_ADMIN_PASSWORD."))
            return
        PASSWORD_FILE.write_text(password + "\n")
        PASSWORD_FILE.chmod(0o600)
        self.stdout.write(self.style.SUCCESS(f"Created admin account: user '{username}', password {password}"))
        self.stdout.write(f"  (kept in {PASSWORD_FILE}; change it with: manage.py changepassword {username})")

    def _ensure_demo_data(self) -> None:
        if Dataset.objects.exists():
            return
        users = get_user_model().objects.order_by("-is_superuser", "date_joined", "pk")
        owner = users.first()
        if owner is None:
            return
        dataset = services.dataset_create(
            project=projects.personal_project(owner),
            name="Capitals and facts (demo)",
            description="General-knowledge questions. Try the keyword agent with the exact-match and contains scorers.",
            input_schema={
                "type": "object",
                "properties": {"question": {"type": "string", "minLength": 1}},
                "required": ["question"],
            },
        )
        services.items_bulk_create(dataset=dataset, items=DEMO_ITEMS)
        self.stdout.write(self.style.SUCCESS(f"Seeded demo dataset '{dataset.name}' with {len(DEMO_ITEMS)} items."))
