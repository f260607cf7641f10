"""Fixtures of notification's integration tests."""

from tests.integration.notification.receiver import receiver

__all__ = ["receiver"]
