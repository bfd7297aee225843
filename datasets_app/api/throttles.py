"""Run starts have their own budget per user (`run_start` in DEFAULT_THROTTLE_RATES):
each one queues up to thousands of billed calls. The API and the start form
share it, so neither is a way around the other."""

from typing import Any

from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle


class RunStartThrottle(UserRateThrottle):
    scope = "run_start"

    def allow_request(self, request: Any, view: Any) -> bool:
        """Counts POSTs only (listing runs is not starting one)."""
        if request.method != "POST":
            return True
        return super().allow_request(request, view)


def with_run_start_budget() -> list[type]:
    """The default throttles plus the run-start budget, for the views that start runs."""
    defaults: list[type] = list(api_settings.DEFAULT_THROTTLE_CLASSES)  # type: ignore[arg-type]  # imported by api_settings
    return [*defaults, RunStartThrottle]
