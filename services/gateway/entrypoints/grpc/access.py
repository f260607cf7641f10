"""billing.gateway.v1.AccessService: protobuf in, the REST API's own use cases (``service/staff.py``), protobuf
out, and the same audit entries the REST API records. Every method runs behind the admission
(``admission.py``), which hands it the admitted :class:`StaffCall` instead of the gRPC context."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import grpc

from billing.gateway.v1 import access_pb2 as pb
from billing.gateway.v1 import access_pb2_grpc
from billing_runtime.errors import InvalidArgument
from billing_runtime.logging import get_logger
from billing_runtime.timestamps import from_timestamp
from services.gateway.adapters.audit import AuditLog
from services.gateway.adapters.staff import GatewayUnitOfWork
from services.gateway.entrypoints.grpc.admission import Admission, StaffCall, admitted_servicer
from services.gateway.entrypoints.grpc.messages import role_name, token_to_pb, user_to_pb, who_am_i
from services.gateway.service import staff
from services.gateway.service.ports import Organisations, Passwords

log = get_logger(__name__)

SERVICE = pb.DESCRIPTOR.services_by_name["AccessService"]


class AccessServicer:
    def __init__(
        self, uow: Callable[[], GatewayUnitOfWork], passwords: Passwords, organisations: Organisations
    ) -> None:
        self._uow = uow
        self._passwords = passwords
        self._organisations = organisations

    async def WhoAmI(self, request: pb.WhoAmIRequest, call: StaffCall) -> pb.WhoAmIResponse:  # noqa: N802
        return who_am_i(call.principal)

    async def CreateUser(self, request: pb.CreateUserRequest, call: StaffCall) -> pb.CreateUserResponse:  # noqa: N802
        password = request.password or None
        user = await staff.create_user(
            self._uow(),
            staff.CreateUser(email=request.email, name=request.name, role=role_name(request.role), password=password,
                             organisation_id=request.organisation_id or None),
            self._passwords, self._organisations,
        )
        await self._record(call, staff.user_created(user, password_set=password is not None))
        return pb.CreateUserResponse(user=user_to_pb(user))

    async def GetUser(self, request: pb.GetUserRequest, call: StaffCall) -> pb.GetUserResponse:  # noqa: N802
        return pb.GetUserResponse(user=user_to_pb(await staff.get_user(self._uow(), request.user_id)))

    async def ListUsers(self, request: pb.ListUsersRequest, call: StaffCall) -> pb.ListUsersResponse:  # noqa: N802
        users, token = await staff.list_users(self._uow(), request.page_size, request.page_token)
        return pb.ListUsersResponse(users=[user_to_pb(u) for u in users], next_page_token=token)

    async def UpdateUser(self, request: pb.UpdateUserRequest, call: StaffCall) -> pb.UpdateUserResponse:  # noqa: N802
        password = request.password if request.HasField("password") else None
        role = role_name(request.role) if request.HasField("role") else None
        before, after = await staff.update_user(
            self._uow(),
            staff.UpdateUser(
                user_id=request.user_id, name=request.name if request.HasField("name") else None, role=role,
                disabled=request.disabled if request.HasField("disabled") else None, password=password,
                reset_totp=request.reset_totp,
            ),
            datetime.now(UTC), self._passwords,
        )
        await self._record(call, staff.user_updated(before, after, password_set=password is not None,
                                                    totp_reset=request.reset_totp))
        return pb.UpdateUserResponse(user=user_to_pb(after))

    async def CreateToken(self, request: pb.CreateTokenRequest, call: StaffCall) -> pb.CreateTokenResponse:  # noqa: N802
        now = datetime.now(UTC)
        expires_at = from_timestamp(request.expire_time, "expire_time") if request.HasField("expire_time") else None
        try:
            token, secret = await staff.create_token(
                self._uow(), staff.CreateToken(user_id=request.user_id, name=request.name, expires_at=expires_at,
                                               allowed_cidrs=tuple(request.allowed_cidrs)), now,
            )
        except InvalidArgument as error:
            if error.field != "expires_at":
                raise
            raise InvalidArgument(error.message, field="expire_time") from None  # the use case's name is REST's
        await self._record(call, staff.token_created(token))
        return pb.CreateTokenResponse(token=token_to_pb(token, now), secret=secret)

    async def ListTokens(self, request: pb.ListTokensRequest, call: StaffCall) -> pb.ListTokensResponse:  # noqa: N802
        now = datetime.now(UTC)
        tokens, token = await staff.list_tokens(self._uow(), request.user_id, request.page_size, request.page_token)
        return pb.ListTokensResponse(tokens=[token_to_pb(t, now) for t in tokens], next_page_token=token)

    async def RotateToken(self, request: pb.RotateTokenRequest, call: StaffCall) -> pb.RotateTokenResponse:  # noqa: N802
        now = datetime.now(UTC)
        overlap = staff.overlap_of(request.overlap_seconds if request.HasField("overlap_seconds") else None)
        old, new, secret = await staff.rotate_token(self._uow(), request.token_id, overlap, now)
        await self._record(call, staff.token_rotated(old))
        return pb.RotateTokenResponse(previous=token_to_pb(old, now), token=token_to_pb(new, now), secret=secret)

    async def RevokeToken(self, request: pb.RevokeTokenRequest, call: StaffCall) -> pb.RevokeTokenResponse:  # noqa: N802
        now = datetime.now(UTC)
        token = await staff.revoke_token(self._uow(), request.token_id, now)
        await self._record(call, staff.token_revoked(token))
        return pb.RevokeTokenResponse(token=token_to_pb(token, now))

    async def _record(self, call: StaffCall, entries: list[staff.AuditEntry]) -> None:
        """The write's audit entries, with the actor, role, source address and request id, as REST records them.
        The write already happened, so a failure here is logged, not returned."""
        try:
            async with self._uow() as uow:
                audit_log = AuditLog(uow.connection)
                for entry in entries:
                    await audit_log.record(
                        request_id=call.request_id, actor=call.principal.actor, role=call.principal.role.value,
                        source_ip=call.source, action=entry.action, resource_type=entry.resource_type,
                        resource_id=entry.resource_id, before=entry.before, after=entry.after,
                    )
        except Exception:  # noqa: BLE001
            log.exception("audit log write failed", actions=[e.action for e in entries])


def add_to_server(servicer: AccessServicer, admission: Admission, server: grpc.aio.Server) -> str:
    """Serve ``servicer`` with every method behind ``admission``; the service's full name."""
    access_pb2_grpc.add_AccessServiceServicer_to_server(admitted_servicer(SERVICE, servicer, admission), server)
    return SERVICE.full_name
