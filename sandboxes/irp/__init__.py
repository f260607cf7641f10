"""A local stand-in for NIC's Invoice Registration Portal (IRP): ``python -m sandboxes.irp``."""

from sandboxes.irp.runner import RunningIrp, running_irp

__all__ = ["RunningIrp", "running_irp"]
