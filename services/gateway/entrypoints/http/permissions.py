"""The one permission table of the gateway: every REST route (method and path template) and every gRPC method
(:data:`METHODS`), and what it asks of its caller. ``access_control`` (``access.py``) enforces it for every
request, the gRPC admission (``entrypoints/grpc/admission.py``) for every call; a route or method missing here is
refused and fails ``tests/unit/services/gateway/entrypoints/http/test_permissions.py``, so neither can ship
unguarded.

- ``PUBLIC``: health, and provider webhooks (verified by their signature);
- ``API_KEY``: a project's API key, verified by ingest; the route sees only the key's organisation (event
  ingestion: the events land in the key's project);
- ``ORG_READ`` / ``ORG_PAY`` / ``ORG_MANAGE``: the customer's API: a project's API key, or an organisation user
  (token, or session cookie with the CSRF token for writes) whose role grants it (member: read and pay; owner:
  also manage the webhook endpoints); the route sees only that organisation (``api_key.OrgScope``);
- ``READ`` / ``OPERATE`` / ``CONFIGURE`` / ``MANAGE_USERS``: a staff credential whose role grants it
  (``services/gateway/domain/access.py``: viewer reads, operator also operates, admin does everything);
- ``READ_OR_API_KEY``: either;
- ``SIGN_IN``: public, the route checks the password itself (``POST /api/v1/auth/login``);
- ``SESSION``: a person's signed-in session (the cookie; CSRF token for writes), whatever their role: the
  /api/v1/auth routes that act on the person's own session, password and second factor.

Staff permissions accept a bearer credential or, without one, the session cookie (``session_cookie.py``).

The dashboard's pages under ``/app`` (``entrypoints/web/``) are in the same table the way the gRPC methods are:
each names its REST twin (:data:`PAGE_TWINS`) and takes that route's entry, so a page asks exactly what the API
asks; the pages then act only for a signed-in person (never a project key).
"""

from __future__ import annotations

from services.gateway.domain.access import (
    API_KEY,
    CONFIGURE,
    MANAGE_USERS,
    OPERATE,
    ORG_MANAGE,
    ORG_PAY,
    ORG_READ,
    PUBLIC,
    READ,
    READ_OR_API_KEY,
    SESSION,
    SIGN_IN,
    Access,
)

ROUTES: dict[tuple[str, str], Access] = {
    ("GET", "/healthz"): PUBLIC,
    # The human docs (served from the package; the OpenAPI document itself is a plain route, outside the table).
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("POST", "/api/v1/events"): API_KEY,
    ("POST", "/api/v1/ingest"): API_KEY,
    ("GET", "/api/v1/admin/usage"): READ,
    ("GET", "/api/v1/usage"): ORG_READ,
    ("POST", "/api/v1/admin/organisations"): CONFIGURE,
    ("GET", "/api/v1/admin/organisations"): READ,
    ("GET", "/api/v1/admin/organisations/{organisation_id}"): READ,
    ("POST", "/api/v1/admin/projects"): CONFIGURE,
    ("GET", "/api/v1/admin/projects"): READ,
    ("GET", "/api/v1/admin/projects/{project_id}"): READ,
    ("POST", "/api/v1/admin/api-keys"): CONFIGURE,
    ("GET", "/api/v1/admin/api-keys"): READ,
    ("POST", "/api/v1/admin/api-keys/{api_key_id}/revoke"): CONFIGURE,
    ("GET", "/api/v1/admin/audit-log"): READ,
    ("GET", "/api/v1/admin/audit-log/export"): READ,
    ("POST", "/api/v1/admin/metrics"): CONFIGURE,
    ("GET", "/api/v1/admin/metrics"): READ,
    ("GET", "/api/v1/admin/metrics/observed"): READ,
    ("GET", "/api/v1/admin/metrics/{metric_id}"): READ,
    ("POST", "/api/v1/admin/metrics/{metric_id}/archive"): CONFIGURE,
    ("GET", "/api/v1/admin/dead-letters"): READ,
    ("GET", "/api/v1/admin/dead-letters/{sequence}"): READ,
    ("POST", "/api/v1/admin/dead-letters/{sequence}/replay"): OPERATE,
    ("POST", "/api/v1/admin/dead-letters/{sequence}/discard"): OPERATE,
    ("POST", "/api/v1/admin/alert-rules"): CONFIGURE,
    ("GET", "/api/v1/admin/alert-rules"): READ,
    ("GET", "/api/v1/admin/alert-rules/{rule_id}"): READ,
    ("DELETE", "/api/v1/admin/alert-rules/{rule_id}"): CONFIGURE,
    ("GET", "/api/v1/admin/fired-alerts"): READ,
    ("GET", "/api/v1/admin/quota"): READ,
    ("GET", "/api/v1/admin/entitlements"): READ,
    ("GET", "/api/v1/quota"): ORG_READ,
    ("GET", "/api/v1/entitlements"): ORG_READ,
    ("GET", "/api/v1/alerts"): ORG_READ,
    ("POST", "/api/v1/admin/plans"): CONFIGURE,
    ("GET", "/api/v1/admin/plans"): READ,
    ("GET", "/api/v1/admin/plans/{plan_id}"): READ,
    ("POST", "/api/v1/admin/plans/{plan_id}/versions"): CONFIGURE,
    ("GET", "/api/v1/admin/plans/{plan_id}/versions"): READ,
    ("GET", "/api/v1/admin/plan-versions/{plan_version_id}"): READ,
    ("POST", "/api/v1/admin/subscriptions"): CONFIGURE,
    ("GET", "/api/v1/admin/subscriptions"): READ,
    ("GET", "/api/v1/admin/subscriptions/{subscription_id}"): READ,
    ("POST", "/api/v1/admin/subscriptions/{subscription_id}/change-plan"): CONFIGURE,
    ("POST", "/api/v1/admin/subscriptions/{subscription_id}/cancel"): CONFIGURE,
    ("POST", "/api/v1/admin/exchange-rates"): CONFIGURE,
    ("GET", "/api/v1/admin/exchange-rates"): READ,
    ("GET", "/api/v1/admin/organisations/{organisation_id}/entitlement-overrides"): READ,
    ("PUT", "/api/v1/admin/organisations/{organisation_id}/entitlement-overrides/{feature}"): CONFIGURE,
    ("DELETE", "/api/v1/admin/organisations/{organisation_id}/entitlement-overrides/{feature}"): CONFIGURE,
    ("GET", "/api/v1/admin/organisations/{organisation_id}/price-overrides"): READ,
    ("PUT", "/api/v1/admin/organisations/{organisation_id}/price-overrides/{plan_code}"): CONFIGURE,
    ("DELETE", "/api/v1/admin/organisations/{organisation_id}/price-overrides/{plan_code}"): CONFIGURE,
    ("POST", "/api/v1/admin/coupons"): CONFIGURE,
    ("GET", "/api/v1/admin/coupons"): READ,
    ("GET", "/api/v1/admin/coupons/{coupon_id}"): READ,
    ("POST", "/api/v1/admin/coupons/{coupon_id}/archive"): CONFIGURE,
    ("POST", "/api/v1/admin/organisations/{organisation_id}/coupons"): CONFIGURE,
    ("GET", "/api/v1/admin/organisations/{organisation_id}/coupons"): READ,
    ("DELETE", "/api/v1/admin/organisations/{organisation_id}/coupons/{coupon_redemption_id}"): CONFIGURE,
    ("GET", "/api/v1/admin/organisations/{organisation_id}/credits"): READ,
    ("POST", "/api/v1/admin/organisations/{organisation_id}/credits/grants"): CONFIGURE,
    ("POST", "/api/v1/admin/organisations/{organisation_id}/credits/top-ups"): OPERATE,
    ("POST", "/api/v1/admin/organisations/{organisation_id}/credits/grants/{grant_id}/void"): CONFIGURE,
    ("GET", "/api/v1/credits"): ORG_READ,
    ("POST", "/api/v1/admin/invoice-runs"): OPERATE,
    ("GET", "/api/v1/admin/invoice-runs"): READ,
    ("GET", "/api/v1/admin/invoice-runs/{invoice_run_id}"): READ,
    ("GET", "/api/v1/admin/invoices"): READ,
    ("GET", "/api/v1/admin/invoices/{invoice_id}"): READ,
    ("POST", "/api/v1/admin/invoices/{invoice_id}/void"): CONFIGURE,
    ("POST", "/api/v1/admin/invoices/{invoice_id}/reissue"): CONFIGURE,
    ("GET", "/api/v1/admin/invoices/{invoice_id}/pdf"): READ,
    ("GET", "/api/v1/admin/invoices/{invoice_id}/html"): READ,
    ("POST", "/api/v1/admin/invoices/{invoice_id}/credit-notes"): CONFIGURE,
    ("GET", "/api/v1/admin/invoices/{invoice_id}/credit-notes"): READ,
    ("GET", "/api/v1/admin/organisations/{organisation_id}/credit-notes"): READ,
    ("GET", "/api/v1/admin/credit-notes/{credit_note_id}"): READ,
    ("GET", "/api/v1/admin/credit-notes/{credit_note_id}/pdf"): READ,
    ("GET", "/api/v1/admin/credit-notes/{credit_note_id}/html"): READ,
    ("GET", "/api/v1/admin/organisations/{organisation_id}/projected-invoice"): READ,
    ("GET", "/api/v1/invoices"): ORG_READ,
    ("GET", "/api/v1/invoices/{invoice_id}"): ORG_READ,
    ("GET", "/api/v1/invoices/{invoice_id}/pdf"): ORG_READ,
    ("GET", "/api/v1/invoices/{invoice_id}/credit-notes"): ORG_READ,
    ("GET", "/api/v1/credit-notes"): ORG_READ,
    ("GET", "/api/v1/credit-notes/{credit_note_id}"): ORG_READ,
    ("GET", "/api/v1/credit-notes/{credit_note_id}/pdf"): ORG_READ,
    ("GET", "/api/v1/projected-invoice"): ORG_READ,
    ("POST", "/api/v1/pricing/quote"): READ_OR_API_KEY,
    ("GET", "/api/v1/admin/invoices/{invoice_id}/payments"): READ,
    ("GET", "/api/v1/admin/invoices/{invoice_id}/checkout"): OPERATE,
    ("POST", "/api/v1/admin/invoices/{invoice_id}/offline-payments"): OPERATE,
    ("POST", "/api/v1/admin/invoices/{invoice_id}/payment-link"): OPERATE,
    ("GET", "/api/v1/admin/payments"): READ,
    ("GET", "/api/v1/admin/payments/{payment_id}"): READ,
    ("POST", "/api/v1/admin/payments/{payment_id}/refunds"): OPERATE,
    ("GET", "/api/v1/admin/refunds"): READ,
    ("GET", "/api/v1/admin/webhook-events"): READ,
    ("GET", "/api/v1/invoices/{invoice_id}/checkout"): ORG_PAY,
    ("POST", "/api/v1/invoices/{invoice_id}/checkout/verify"): ORG_PAY,
    ("POST", "/api/v1/invoices/{invoice_id}/payment-link"): ORG_PAY,
    ("GET", "/api/v1/invoices/{invoice_id}/payments"): ORG_READ,
    ("GET", "/api/v1/admin/invoices/{invoice_id}/dunning"): READ,
    ("GET", "/api/v1/admin/organisations/{organisation_id}/dunning-policy"): READ,
    ("PUT", "/api/v1/admin/organisations/{organisation_id}/dunning-policy"): CONFIGURE,
    ("DELETE", "/api/v1/admin/organisations/{organisation_id}/dunning-policy"): CONFIGURE,
    ("GET", "/api/v1/admin/organisations/{organisation_id}/payment-provider"): READ,
    ("PUT", "/api/v1/admin/organisations/{organisation_id}/payment-provider"): CONFIGURE,
    ("DELETE", "/api/v1/admin/organisations/{organisation_id}/payment-provider"): CONFIGURE,
    # Recurring mandates: made and cancelled by admins (they bind a customer's bank account); paused by operators.
    ("GET", "/api/v1/admin/organisations/{organisation_id}/mandates"): READ,
    ("POST", "/api/v1/admin/organisations/{organisation_id}/mandates"): CONFIGURE,
    ("POST", "/api/v1/admin/mandates/{mandate_id}/pause"): OPERATE,
    ("POST", "/api/v1/admin/mandates/{mandate_id}/cancel"): CONFIGURE,
    ("GET", "/api/v1/admin/invoices/{invoice_id}/auto-debit"): READ,
    ("POST", "/api/v1/admin/reconciliation-runs"): OPERATE,
    ("GET", "/api/v1/admin/reconciliation-runs"): READ,
    ("GET", "/api/v1/admin/reconciliation-runs/{run_id}"): READ,
    ("GET", "/api/v1/admin/discrepancies"): READ,
    ("POST", "/api/v1/admin/discrepancies/{discrepancy_id}/resolve"): OPERATE,
    ("GET", "/api/v1/admin/invoices/{invoice_id}/status-changes"): READ,
    ("GET", "/api/v1/admin/invoices/{invoice_id}/settlements"): READ,
    ("GET", "/api/v1/admin/review-items"): READ,
    ("POST", "/api/v1/admin/review-items/{review_item_id}/resolve"): OPERATE,
    ("GET", "/api/v1/admin/einvoices"): READ,
    ("POST", "/api/v1/admin/einvoices/{document_id}/retry"): OPERATE,
    ("GET", "/api/v1/admin/messages"): READ,
    ("GET", "/api/v1/admin/messages/{message_id}"): READ,
    ("GET", "/api/v1/admin/messages/{message_id}/preview"): READ,
    ("GET", "/api/v1/admin/messages/{message_id}/preview.html"): READ,
    ("POST", "/api/v1/admin/messages/{message_id}/resend"): OPERATE,
    ("GET", "/api/v1/admin/organisations/{organisation_id}/recipients"): READ,
    ("PUT", "/api/v1/admin/organisations/{organisation_id}/recipients"): CONFIGURE,
    ("GET", "/api/v1/messages"): ORG_READ,
    ("POST", "/api/v1/admin/organisations/{organisation_id}/webhook-endpoints"): CONFIGURE,
    ("GET", "/api/v1/admin/webhook-endpoints"): READ,
    ("GET", "/api/v1/admin/webhook-endpoints/{endpoint_id}"): READ,
    ("PATCH", "/api/v1/admin/webhook-endpoints/{endpoint_id}"): CONFIGURE,
    ("DELETE", "/api/v1/admin/webhook-endpoints/{endpoint_id}"): CONFIGURE,
    ("POST", "/api/v1/admin/webhook-endpoints/{endpoint_id}/rotate-secret"): CONFIGURE,
    ("POST", "/api/v1/admin/webhook-endpoints/{endpoint_id}/test"): CONFIGURE,
    ("GET", "/api/v1/admin/webhook-deliveries"): READ,
    ("GET", "/api/v1/admin/webhook-deliveries/{delivery_id}"): READ,
    ("POST", "/api/v1/admin/webhook-deliveries/{delivery_id}/replay"): OPERATE,
    ("GET", "/api/v1/webhook-endpoints"): ORG_READ,
    ("POST", "/api/v1/webhook-endpoints"): ORG_MANAGE,
    ("GET", "/api/v1/webhook-endpoints/{endpoint_id}"): ORG_READ,
    ("PATCH", "/api/v1/webhook-endpoints/{endpoint_id}"): ORG_MANAGE,
    ("DELETE", "/api/v1/webhook-endpoints/{endpoint_id}"): ORG_MANAGE,
    ("POST", "/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): ORG_MANAGE,
    ("POST", "/api/v1/webhook-endpoints/{endpoint_id}/test"): ORG_MANAGE,
    ("GET", "/api/v1/webhook-deliveries"): ORG_READ,
    ("POST", "/api/v1/webhooks/razorpay"): PUBLIC,
    ("POST", "/api/v1/webhooks/stripe"): PUBLIC,
    # Usage reconciliation (metering).
    ("POST", "/api/v1/admin/usage-reconciliations"): OPERATE,
    ("GET", "/api/v1/admin/usage-reconciliations"): READ,
    ("GET", "/api/v1/admin/usage-reconciliations/{reconciliation_id}"): READ,
    # Staff users, roles and tokens.
    ("GET", "/api/v1/admin/me"): READ,
    ("POST", "/api/v1/admin/users"): MANAGE_USERS,
    ("GET", "/api/v1/admin/users"): MANAGE_USERS,
    ("GET", "/api/v1/admin/users/{user_id}"): MANAGE_USERS,
    ("PATCH", "/api/v1/admin/users/{user_id}"): MANAGE_USERS,
    ("POST", "/api/v1/admin/users/{user_id}/tokens"): MANAGE_USERS,
    ("GET", "/api/v1/admin/users/{user_id}/tokens"): MANAGE_USERS,
    ("POST", "/api/v1/admin/tokens/{token_id}/rotate"): MANAGE_USERS,
    ("POST", "/api/v1/admin/tokens/{token_id}/revoke"): MANAGE_USERS,
    # People signing in to the dashboard (sessions, CSRF, TOTP).
    ("POST", "/api/v1/auth/login"): SIGN_IN,
    ("GET", "/api/v1/auth/session"): SESSION,
    ("POST", "/api/v1/auth/logout"): SESSION,
    ("POST", "/api/v1/auth/password"): SESSION,
    ("POST", "/api/v1/auth/totp"): SESSION,
    ("POST", "/api/v1/auth/totp/confirm"): SESSION,
    ("DELETE", "/api/v1/auth/totp"): SESSION,
}

# The gRPC API (billing.gateway.v1.AccessService, entrypoints/grpc/): each method names its REST twin and takes
# that route's entry, so one permission decides both and the two cannot drift apart.
ACCESS_SERVICE = "billing.gateway.v1.AccessService"
GRPC_TWINS: dict[str, tuple[str, str]] = {
    "WhoAmI": ("GET", "/api/v1/admin/me"),
    "CreateUser": ("POST", "/api/v1/admin/users"),
    "GetUser": ("GET", "/api/v1/admin/users/{user_id}"),
    "ListUsers": ("GET", "/api/v1/admin/users"),
    "UpdateUser": ("PATCH", "/api/v1/admin/users/{user_id}"),
    "CreateToken": ("POST", "/api/v1/admin/users/{user_id}/tokens"),
    "ListTokens": ("GET", "/api/v1/admin/users/{user_id}/tokens"),
    "RotateToken": ("POST", "/api/v1/admin/tokens/{token_id}/rotate"),
    "RevokeToken": ("POST", "/api/v1/admin/tokens/{token_id}/revoke"),
}
METHODS: dict[str, Access] = {f"/{ACCESS_SERVICE}/{name}": ROUTES[twin] for name, twin in GRPC_TWINS.items()}

# The dashboard (entrypoints/web/): each page names the REST route it shows or does, and takes that route's entry.
PAGE_TWINS: dict[tuple[str, str], tuple[str, str]] = {
    # Signing in and out: the login form is public (it checks the password); the landing page and signing out
    # need the person's session.
    ("GET", "/app/login"): ("POST", "/api/v1/auth/login"),
    ("POST", "/app/login"): ("POST", "/api/v1/auth/login"),
    ("GET", "/app"): ("GET", "/api/v1/auth/session"),
    ("POST", "/app/logout"): ("POST", "/api/v1/auth/logout"),
    # A customer's pages (organisation users): their organisation only.
    ("GET", "/app/overview"): ("GET", "/api/v1/projected-invoice"),
    ("GET", "/app/usage"): ("GET", "/api/v1/usage"),
    ("GET", "/app/invoices"): ("GET", "/api/v1/invoices"),
    ("GET", "/app/invoices/{invoice_id}"): ("GET", "/api/v1/invoices/{invoice_id}"),
    ("GET", "/app/invoices/{invoice_id}/pdf"): ("GET", "/api/v1/invoices/{invoice_id}/pdf"),
    # Operators' pages (staff).
    ("GET", "/app/operator/organisations"): ("GET", "/api/v1/admin/organisations"),
    ("GET", "/app/operator/invoice-runs"): ("GET", "/api/v1/admin/invoice-runs"),
    ("POST", "/app/operator/invoice-runs"): ("POST", "/api/v1/admin/invoice-runs"),
    ("GET", "/app/operator/invoice-runs/{invoice_run_id}"): ("GET", "/api/v1/admin/invoice-runs/{invoice_run_id}"),
    ("GET", "/app/operator/audit-log"): ("GET", "/api/v1/admin/audit-log"),
    # Operators' pages: an organisation's own page, collecting money, dead letters, users and roles.
    ("GET", "/app/operator/organisations/{organisation_id}"): ("GET", "/api/v1/admin/organisations/{organisation_id}"),
    ("GET", "/app/operator/organisations/{organisation_id}/period"): (
        "GET", "/api/v1/admin/organisations/{organisation_id}/projected-invoice"),
    ("GET", "/app/operator/payments"): ("GET", "/api/v1/admin/payments"),
    ("POST", "/app/operator/review-items/{review_item_id}/resolve"): (
        "POST", "/api/v1/admin/review-items/{review_item_id}/resolve"),
    ("GET", "/app/operator/invoices/{invoice_id}/payments"): ("GET", "/api/v1/admin/invoices/{invoice_id}/payments"),
    ("POST", "/app/operator/payments/{payment_id}/refunds"): ("POST", "/api/v1/admin/payments/{payment_id}/refunds"),
    ("GET", "/app/operator/reconciliation"): ("GET", "/api/v1/admin/reconciliation-runs"),
    ("POST", "/app/operator/reconciliation"): ("POST", "/api/v1/admin/reconciliation-runs"),
    ("GET", "/app/operator/reconciliation/{run_id}"): ("GET", "/api/v1/admin/reconciliation-runs/{run_id}"),
    ("POST", "/app/operator/discrepancies/{discrepancy_id}/resolve"): (
        "POST", "/api/v1/admin/discrepancies/{discrepancy_id}/resolve"),
    ("GET", "/app/operator/dead-letters"): ("GET", "/api/v1/admin/dead-letters"),
    ("GET", "/app/operator/dead-letters/{sequence}"): ("GET", "/api/v1/admin/dead-letters/{sequence}"),
    ("POST", "/app/operator/dead-letters/{sequence}/discard"): (
        "POST", "/api/v1/admin/dead-letters/{sequence}/discard"),
    ("POST", "/app/operator/dead-letters/{sequence}/replay"): ("POST", "/api/v1/admin/dead-letters/{sequence}/replay"),
    ("GET", "/app/operator/users"): ("GET", "/api/v1/admin/users"),
    ("POST", "/app/operator/users"): ("POST", "/api/v1/admin/users"),
    ("POST", "/app/operator/users/{user_id}"): ("PATCH", "/api/v1/admin/users/{user_id}"),
}
PAGES: dict[tuple[str, str], Access] = {page: ROUTES[twin] for page, twin in PAGE_TWINS.items()}
