"""`manage.py api_token create|revoke|show USERNAME`: a user's API token from a terminal
(the same token the profile page makes; one per user)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create (or replace), revoke or show whether a user has an API token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["create", "revoke", "show"])
        parser.add_argument("username")

    def handle(self, *args: Any, action: str, username: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if action == "create":
            Token.objects.filter(user=user).delete()
            # The key alone on stdout, so scripts can capture it: KEY=$(manage.py api_token create ci)
            self.stdout.write(Token.objects.create(user=user).key)
        elif action == "revoke":
            deleted, _ = Token.objects.filter(user=user).delete()
            self.stdout.write(f"Revoked {username}'s token." if deleted else f"{username} had no token.")
        else:
            token = Token.objects.filter(user=user).first()
            self.stdout.write(
                f"{username} has a token made {token.created:%Y-%m-%d %H:%M} UTC."
                if token
                else f"{username} has no token."
            )
