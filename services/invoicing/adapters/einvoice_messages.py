"""E-invoice registrations <-> protobuf."""

from __future__ import annotations

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing_runtime.errors import InvalidArgument
from billing_runtime.timestamps import to_timestamp
from services.invoicing.domain.einvoice_registration import Registration, RegistrationStatus

_STATUS_TO_PB = {
    RegistrationStatus.PENDING: pb.EINVOICE_REGISTRATION_STATUS_PENDING,
    RegistrationStatus.REGISTERED: pb.EINVOICE_REGISTRATION_STATUS_REGISTERED,
    RegistrationStatus.FAILED: pb.EINVOICE_REGISTRATION_STATUS_FAILED,
    RegistrationStatus.CANCELLED: pb.EINVOICE_REGISTRATION_STATUS_CANCELLED,
}
_STATUS_FROM_PB = {v: k for k, v in _STATUS_TO_PB.items()}


def status_from_pb(value: int) -> str:
    """The status filter: "" for unspecified (every status)."""
    if value == pb.EINVOICE_REGISTRATION_STATUS_UNSPECIFIED:
        return ""
    if value not in _STATUS_FROM_PB:
        raise InvalidArgument(f"{value} is not an EinvoiceRegistrationStatus", field="status")
    return _STATUS_FROM_PB[value].value


def registration_to_pb(registration: Registration, organisation_id: str = "") -> pb.EinvoiceRegistration:
    message = pb.EinvoiceRegistration(
        document_id=registration.document_id,
        organisation_id=organisation_id,
        invoice_id=registration.invoice_id,
        document_type=registration.document_type,
        document_number=registration.document_number,
        irn=registration.irn,
        status=_STATUS_TO_PB[registration.status],
        attempts=registration.attempts,
        last_error=registration.last_error,
        ack_no=registration.ack_no,
    )
    if registration.ack_at is not None:
        message.ack_time.CopyFrom(to_timestamp(registration.ack_at))
    if registration.next_attempt_at is not None and registration.status is RegistrationStatus.PENDING:
        message.next_attempt_time.CopyFrom(to_timestamp(registration.next_attempt_at))
    if registration.cancelled_at is not None:
        message.cancel_time.CopyFrom(to_timestamp(registration.cancelled_at))
    return message
