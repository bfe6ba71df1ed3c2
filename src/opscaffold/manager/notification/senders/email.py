"""Email through the configured SMTP server (stdlib smtplib, in a thread): plain text and a
subject, STARTTLS, implicit TLS or none, verified against `ca_file` when given."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from datetime import UTC
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from opscaffold.manager.config import SmtpSettings
from opscaffold.manager.kit.clock import as_utc
from opscaffold.manager.notification import render
from opscaffold.manager.notification.render import Notification
from opscaffold.manager.notification.schemas import EmailConfig
from opscaffold.manager.notification.senders.base import DeliveryFailed, SendContext


def message(smtp: SmtpSettings, recipients: list[str], n: Notification) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = smtp.from_address
    mail["To"] = ", ".join(recipients)
    mail["Subject"] = render.title(n)
    mail["Date"] = format_datetime(as_utc(n.sent_at).replace(tzinfo=UTC))
    mail["Message-ID"] = make_msgid(f"delivery-{n.delivery_id}")
    mail["X-Ops-Delivery"] = str(n.delivery_id)
    mail.set_content(render.text(n) + "\n")
    return mail


def _deliver(smtp: SmtpSettings, mail: EmailMessage) -> None:
    context = ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)
    timeout = smtp.timeout.total_seconds()
    server: smtplib.SMTP
    if smtp.security == "tls":
        server = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=context)
    else:
        server = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
    with server:
        if smtp.security == "starttls":
            server.starttls(context=context)
        if smtp.username:
            server.login(smtp.username, smtp.password.get_secret_value())
        server.send_message(mail)


async def send(config: EmailConfig, n: Notification, ctx: SendContext) -> None:
    smtp = ctx.smtp
    if not smtp.host:
        raise DeliveryFailed("alert.notify.smtp.host is not configured")
    mail = message(smtp, [str(r) for r in config.recipients], n)
    try:
        await asyncio.to_thread(_deliver, smtp, mail)
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryFailed(f"SMTP refused {len(exc.recipients)} recipient(s)") from None
    except smtplib.SMTPResponseException as exc:
        raise DeliveryFailed(f"SMTP {exc.smtp_code} ({type(exc).__name__})") from None
    except smtplib.SMTPNotSupportedError:
        raise DeliveryFailed("SMTP server does not offer STARTTLS") from None
    except ssl.SSLError as exc:
        raise DeliveryFailed(f"TLS: {type(exc).__name__}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"SMTP: {type(exc).__name__}") from None
