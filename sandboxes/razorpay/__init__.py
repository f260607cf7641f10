"""A local Razorpay: the REST API the official SDK calls, a hosted checkout page, signed webhooks, and a control
API under /_sandbox for tests. It imports nothing from services/: it stands where Razorpay stands."""

from sandboxes.razorpay.runner import RunningSandbox, running_sandbox
from sandboxes.razorpay.settings import SandboxSettings

__all__ = ["RunningSandbox", "SandboxSettings", "running_sandbox"]
