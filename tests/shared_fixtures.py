"""Where the providers' real payloads are: ``../shared/fixtures`` beside the repository (a developer's checkout
and CI's clone both have the shared folder next to them)."""

from __future__ import annotations

from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
RAZORPAY_FIXTURES = SHARED / "fixtures" / "razorpay"
STRIPE_FIXTURES = SHARED / "fixtures" / "stripe"
