"""/api/v1/auth: people sign in with email and password (and a TOTP code once enabled) to a browser session
(the ``billing_session`` cookie, see ``session_cookie.py``), sign out, change their password and manage their
second factor. Sign-ins (failed ones too), sign-outs, password changes and TOTP changes are audited."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse

from billing_runtime.errors import Unauthenticated
from services.gateway.domain import sessions as sess
from services.gateway.entrypoints.http import auth_schemas as aus
from services.gateway.entrypoints.http import schemas
from services.gateway.entrypoints.http.access import principal_of, source_address
from services.gateway.entrypoints.http.admin import audit
from services.gateway.entrypoints.http.session_cookie import clear_cookie, set_cookie
from services.gateway.entrypoints.http.staff_schemas import User
from services.gateway.service import sessions
from services.gateway.service.ports import StaffTransaction

router = APIRouter(
    prefix="/api/v1/auth", tags=["sign-in"],
    responses={code: {"model": schemas.Error} for code in (400, 401, 403, 422)},
)


def _uow(request: Request) -> StaffTransaction:
    return request.app.state.uow_factory()


def _info(request: Request, session_id: str, session: sess.Session, user) -> aus.SessionInfo:
    return aus.SessionInfo(
        csrf_token=sess.csrf_token_of(session_id), expires_at=session.expires_at,
        idle_expires_at=session.idle_expires_at(request.app.state.settings.session_policy()), user=User.of(user),
    )


async def sign_in(request: Request, body: aus.Login) -> sessions.SignedIn:
    """Check the password (and TOTP code) and open a session, auditing the sign-in or its refusal; raises
    ``sessions.SignInRefused``. The REST route and the dashboard's sign-in form both come here."""
    source = source_address(request)
    try:
        signed_in = await sessions.login(
            _uow(request), request.app.state.passwords, request.app.state.totp, request.app.state.login_throttle,
            sessions.Login(email=body.email, password=body.password.get_secret_value(), totp_code=body.totp_code,
                           source_ip=source, user_agent=request.headers.get("user-agent", "")),
            request.app.state.settings.session_policy(), datetime.now(UTC),
        )
    except sessions.SignInRefused as refused:
        # Never the password; the email as typed, clipped (anyone can send anything).
        await audit(request, "auth.login_failed", "user", refused.user_id,
                    actor=sess.clip_email(body.email.lower()) or "-", reason=refused.reason, role="")
        raise
    user = signed_in.user
    await audit(request, "auth.login", "user", user.id, actor=f"user:{user.id}", role=user.role.value)
    return signed_in


def session_max_age(signed_in: sessions.SignedIn) -> int:
    return int((signed_in.session.expires_at - signed_in.session.created_at).total_seconds())


@router.post("/login", response_model=aus.SessionInfo, summary="Sign in (sets the session cookie)")
async def login(body: aus.Login, request: Request, response: Response):
    """Sets `billing_session` (HttpOnly, SameSite=Strict, Secure) and answers the session's CSRF token. A wrong
    email or password answer the same 401; once TOTP is enabled, a missing or wrong `totp_code` answers 401 naming
    the field."""
    try:
        signed_in = await sign_in(request, body)
    except sessions.SignInRefused as refused:
        if refused.field is None:
            raise Unauthenticated(refused.message) from None  # the plain 401 every wrong email or password gets
        # The missing or wrong second factor, named as a sign-in form wants it: "totp_code is required".
        return JSONResponse({"error": refused.code, "detail": refused.message, "field": refused.field},
                            status_code=401, headers={"WWW-Authenticate": "Bearer"})
    set_cookie(request, response, signed_in.session_id, session_max_age(signed_in))
    return _info(request, signed_in.session_id, signed_in.session, signed_in.user)


@router.get("/session", response_model=aus.SessionInfo, summary="Who is signed in")
async def current_session(request: Request):
    """The signed-in user, the session's CSRF token (again, e.g. after a reload) and when the session ends."""
    return _info(request, request.state.session_id, request.state.session, request.state.session_user)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="Sign out")
async def logout(request: Request) -> Response:
    """Ends the session at once and clears the cookie."""
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    await sign_out(request, response)
    return response


async def sign_out(request: Request, response: Response) -> None:
    """End the request's session, audit it and clear the cookie on ``response`` (REST and the dashboard)."""
    await sessions.logout(_uow(request), request.state.session, datetime.now(UTC))
    await audit(request, "auth.logout", "user", principal_of(request).user_id)
    clear_cookie(request, response)


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT, summary="Change my password")
async def change_password(body: aus.PasswordChange, request: Request) -> None:
    """Needs the current password (403 naming `current_password` when wrong); the new one must be 12 to 256
    characters and not the email. Every other session of the user ends; this one stays."""
    principal = principal_of(request)
    ended = await sessions.change_password(
        _uow(request), request.app.state.passwords, request.app.state.login_throttle,
        sessions.ChangePassword(
            user_id=principal.user_id, current_password=body.current_password.get_secret_value(),
            new_password=body.new_password.get_secret_value(), keep_session=request.state.session.id_hash,
            source_ip=source_address(request),
        ),
        datetime.now(UTC),
    )
    await audit(request, "auth.password_change", "user", principal.user_id, after={"sessions_ended": ended})


@router.post("/totp", response_model=aus.TotpEnrolment, summary="Start enrolling an authenticator (TOTP)")
async def begin_totp(request: Request):
    """A new secret and its `otpauth://` URI; not in force until confirmed with a code from the app."""
    enrolment = await sessions.begin_totp(_uow(request), request.app.state.totp, principal_of(request).user_id)
    return aus.TotpEnrolment(secret=enrolment.secret, otpauth_uri=enrolment.uri)


@router.post("/totp/confirm", status_code=status.HTTP_204_NO_CONTENT, summary="Enable TOTP with a first code")
async def confirm_totp(body: aus.TotpCode, request: Request) -> None:
    """From now on, signing in needs a code too."""
    user_id = principal_of(request).user_id
    await sessions.confirm_totp(_uow(request), request.app.state.totp, user_id, body.code, datetime.now(UTC))
    await audit(request, "auth.totp_enable", "user", user_id)


@router.delete("/totp", status_code=status.HTTP_204_NO_CONTENT, summary="Disable TOTP (needs a current code)")
async def disable_totp(body: aus.TotpCode, request: Request) -> None:
    user_id = principal_of(request).user_id
    await sessions.disable_totp(_uow(request), request.app.state.totp, user_id, body.code, datetime.now(UTC))
    await audit(request, "auth.totp_disable", "user", user_id)
