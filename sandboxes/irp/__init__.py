"""A local stand-in for NIC's Invoice Registration Portal (IRP): ``python -m sandboxes.irp``."""

from sandboxes.irp.control import IrpControl
from sandboxes.irp.runner import RunningIrp, running_irp

__all__ = ["IrpControl", "RunningIrp", "running_irp"]
