"""Celery tasks for emails about a staff member's own account that are queued by the
sign-in service and by admins' invitations (ids only; the text is built by
intake.services.staff_mail)."""

from __future__ import annotations

from celery import shared_task

from workers.guard import run_guarded


@shared_task(name="staff.lockout_notice", bind=True)
def staff_lockout_notice(self, user_id: int, day: str) -> str:  # type: ignore[no-untyped-def]
    """Tell a staff member their account was locked (the sign-in page does not say so)."""
    from intake.services import staff_mail

    return run_guarded(self, lambda: staff_mail.send_lockout_notice(int(user_id), str(day)))


@shared_task(name="staff.invite", bind=True)
def staff_invite(self, reset_id: int, admin_id: int) -> str:  # type: ignore[no-untyped-def]
    """Email a new account's owner the link to set a first password (rebuilt from the row)."""
    from intake.services import staff_mail

    return run_guarded(self, lambda: staff_mail.send_invite(int(reset_id), int(admin_id)))


@shared_task(name="staff.security_notice", bind=True)
def staff_security_notice(self, audit_event_id: int) -> str:  # type: ignore[no-untyped-def]
    """Tell a staff member of a change to how their account signs in (password, second
    factor, recovery codes), named by its audit row."""
    from intake.services import staff_mail

    return run_guarded(self, lambda: staff_mail.send_security_notice(int(audit_event_id)))
