"""python -m services.notification [serve|migrate]"""

from datetime import timedelta
from pathlib import Path

from billing.notification.v1 import notification_pb2, notification_pb2_grpc
from billing_runtime import mesh
from billing_runtime.service import Runtime, ServiceDefinition, Wiring, main
from services.notification.adapters.email_builder import Sender as MailSender
from services.notification.adapters.invoicing import Invoicing
from services.notification.adapters.mailer import SmtpMailer, SmtpServer
from services.notification.adapters.tables import metadata
from services.notification.adapters.templates import Branding, Templates
from services.notification.adapters.unit_of_work import NotificationUnitOfWork
from services.notification.adapters.webhook_poster import HttpxPoster, LoopResolver
from services.notification.config import NotificationSettings
from services.notification.entrypoints import consumers
from services.notification.entrypoints.grpc import NotificationServicer
from services.notification.entrypoints.webhooks_grpc import WebhookRpcSettings
from services.notification.entrypoints.workers import ReminderWorker, Sender, WebhookSender
from services.notification.service.sending import Delivery
from services.notification.service.webhook_sending import WebhookSending


def register(runtime: Runtime, settings: NotificationSettings) -> Wiring:
    def uow() -> NotificationUnitOfWork:
        return NotificationUnitOfWork(runtime.engine)

    templates = Templates(Branding(settings.brand_name, settings.brand_colour, settings.brand_footer),
                          settings.template_dir)
    invoicing = Invoicing(settings.invoicing_address)
    runtime.on_shutdown(invoicing.close)
    mailer = SmtpMailer(SmtpServer(settings.smtp_host, settings.smtp_port, settings.smtp_security,
                                   settings.smtp_username, settings.smtp_password.get_secret_value(),
                                   settings.smtp_timeout_seconds))
    delivery = Delivery(mailer, templates, invoicing, MailSender(settings.from_address, settings.unsubscribe_address),
                        settings.retry_schedule(), timedelta(seconds=settings.send_lease_seconds))
    sender = Sender(uow, delivery, settings.worker_interval_seconds)
    poster = HttpxPoster(settings.webhooks_timeout_seconds)
    runtime.on_shutdown(poster.close)
    resolver = LoopResolver()
    posting = WebhookSending(poster, resolver, settings.webhook_schedule(), settings.webhooks_allow_private_addresses,
                             timedelta(seconds=settings.webhooks_lease_seconds), settings.message_domain,
                             on_mail=sender.wake)
    webhook_sender = WebhookSender(uow, posting, settings.worker_interval_seconds)

    def wake() -> None:
        sender.wake()
        webhook_sender.wake()

    reminder_worker = ReminderWorker(uow, settings.message_domain, settings.worker_interval_seconds, wake)

    rpcs = WebhookRpcSettings(resolver, settings.webhooks_allow_private_addresses,
                              timedelta(seconds=settings.webhooks_rotation_overlap_seconds), webhook_sender.wake)
    notification_pb2_grpc.add_NotificationServiceServicer_to_server(NotificationServicer(uow, templates, rpcs),
                                                                    runtime.server)

    async def on_ready() -> None:
        assert runtime.js is not None
        for consumer in consumers.consumers(runtime.js, uow, settings.message_domain, wake,
                                            settings.consumer_durable_prefix, invoicing,
                                            settings.consumer_start_from, settings.reminder_schedule()):
            runtime.spawn(consumer.run(), name=f"notification-{consumer.config().durable_name}")
        runtime.spawn(sender.run(), name="notification-sender")
        runtime.spawn(webhook_sender.run(), name="notification-webhook-sender")
        runtime.spawn(reminder_worker.run(), name="notification-reminders")

    return Wiring([notification_pb2.DESCRIPTOR.services_by_name["NotificationService"].full_name], on_ready)


# Who may call what (billing_runtime.mesh): the gateway (and an operator); no other service calls notification.
ACCESS = mesh.methods("billing.notification.v1.NotificationService", {
    "ListMessages": mesh.EDGE,
    "GetMessage": mesh.EDGE,
    "PreviewMessage": mesh.EDGE,
    "ResendMessage": mesh.EDGE,
    "GetRecipients": mesh.EDGE,
    "SetRecipients": mesh.EDGE,
    "CreateEndpoint": mesh.EDGE,
    "ListEndpoints": mesh.EDGE,
    "GetEndpoint": mesh.EDGE,
    "UpdateEndpoint": mesh.EDGE,
    "DeleteEndpoint": mesh.EDGE,
    "RotateEndpointSecret": mesh.EDGE,
    "ListDeliveries": mesh.EDGE,
    "GetDelivery": mesh.EDGE,
    "ReplayDelivery": mesh.EDGE,
    "SendTestWebhook": mesh.EDGE,
})

DEFINITION = ServiceDefinition(
    name="notification",
    settings_cls=NotificationSettings,
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    access=ACCESS,
)

if __name__ == "__main__":
    main(DEFINITION)
