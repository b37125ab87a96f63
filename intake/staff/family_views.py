"""Case-page actions for the family paths: moving an existing patient's message through its
states (decision 11) and recording that a family revoked the records-release authorization
(decision 16). Same checks as every case action: signed in, care-team role, case in scope."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import flash
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response
from wtforms import BooleanField, DateField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length

from intake.domain import messages
from intake.domain.reference import format_reference
from intake.extensions import db
from intake.forms.referral import as_choices
from intake.models import Referral, User
from intake.services import audit, authorization, family_messages, queue, revocation
from intake.staff import bp, staff_required
from intake.staff.case_views import _back, _rerender, _user

CARE_TEAM = ("coordinator", "admin")


class MessageStateForm(FlaskForm):
    target = SelectField(_l("Move the message to"), choices=[], validate_choice=True)


class RevocationForm(FlaskForm):
    received_on = DateField(
        _l("Date the revocation was received"),
        validators=[InputRequired(message=_l("Enter the date the revocation reached us."))],
    )
    method = RadioField(
        _l("How the family revoked it"),
        choices=as_choices(
            [(code, _l(label)) for code, label in messages.REVOCATION_METHODS.items()]
        ),
        validators=[InputRequired(message=_l("Choose how the family revoked it."))],
    )


class MatchMessageForm(FlaskForm):
    """Match an unmatched message to the child's case (decision 11), by its reference."""

    match_reference = StringField(
        _l("Reference of the child's case"),
        description=_l("As shown on the case page, for example 7K3M-Q9TX-2HF."),
        validators=[
            InputRequired(message=_l("Enter the reference of the child's case.")),
            Length(max=40, message=_l("A case reference is 11 letters and digits.")),
        ],
    )
    match_confirmed = BooleanField(
        _l("I have checked that this message is about the child of that case"),
        validators=[
            DataRequired(message=_l("Confirm that you checked it is the same child."))
        ],
    )


def _state_choices(state: str, role: str) -> list[tuple[str, Any]]:
    return [(s, _l(messages.STATE_LABELS[s])) for s in messages.allowed_next(state, role)]


def case_extras(referral: Referral, user: User, forms: dict[str, Any]) -> dict[str, Any]:
    """What the case page shows for messages and authorizations (no extra audit rows: the
    page view's one row covers everything on it)."""
    message = family_messages.message_of(referral)
    message_form = forms.get("message_form") or MessageStateForm()
    if message is not None:
        message_form.target.choices = as_choices(_state_choices(message.state, user.role))
    signed = authorization.for_case(referral)
    revoked_by = None
    if signed is not None and signed.revoked_by is not None:
        revoker = db.session.get(User, signed.revoked_by)
        revoked_by = revoker.email if revoker else None
    return {
        "family_message": message,
        # Within the user's own scope: a case outside it is not even named (decision 10).
        "matched_case": db.session.scalar(
            sa.select(Referral).where(
                Referral.id == message.matched_case_id, queue.scope_clause(user)
            )
        )
        if message is not None and message.matched_case_id
        else None,
        "message_state_labels": messages.STATE_LABELS,
        "message_form": message_form,
        "match_form": forms.get("match_form") or MatchMessageForm(),
        "linked_messages": family_messages.messages_for_case(user, referral),
        "authorization": signed,
        "authorization_expired": signed is not None
        and signed.revoked_at is None
        and authorization.is_expired(signed),
        "revoked_by": revoked_by,
        "revocation_methods": messages.REVOCATION_METHODS,
        "revocation_form": forms.get("revocation_form") or RevocationForm(),
        "care_team": user.role in CARE_TEAM,
    }


@bp.post("/referrals/<reference>/message-state")
@staff_required(*CARE_TEAM)
def change_message_state(reference: str) -> Response | tuple[str, int]:
    user = _user()
    referral = queue.get_referral_for(user, reference)
    message = family_messages.message_of(referral)
    if message is None:
        audit.record(
            audit.DENIED, "family_message", referral.reference, outcome="denied", commit=True
        )
        raise NotFound()
    form = MessageStateForm()
    # Every known state passes the form; the domain's table gives the clear message.
    form.target.choices = as_choices([(s, s) for s in messages.MESSAGE_STATES])
    if not form.validate_on_submit():
        return _rerender(referral, message_form=form)
    target = form.target.data or ""
    try:
        family_messages.change_state(referral, user, target)
    except messages.MessageTransitionError as error:
        family_messages.record_refusal(referral, user, error)
        form.target.errors = [error.message]
        return _rerender(referral, 409, message_form=form, status_error=error.message)
    flash(_("Message marked “%(state)s”.", state=_(messages.STATE_LABELS[target])))
    return _back(referral)


@bp.post("/referrals/<reference>/revoke-authorization")
@staff_required(*CARE_TEAM)
def revoke_authorization(reference: str) -> Response | tuple[str, int]:
    user = _user()
    referral = queue.get_referral_for(user, reference)
    form = RevocationForm()
    if not form.validate_on_submit():
        return _rerender(referral, revocation_form=form)
    assert form.received_on.data is not None  # validated
    try:
        covered = revocation.revoke(
            referral, user, method=form.method.data or "", received_on=form.received_on.data
        )
    except messages.RevocationError as error:
        db.session.rollback()
        audit.record(
            audit.UPDATE,
            "records_authorization",
            referral.reference,
            outcome="failure",
            detail=f"revoke:{error.code}",
            user=user,
            commit=True,
        )
        form.received_on.errors = [error.message]
        return _rerender(referral, 409, revocation_form=form, status_error=error.message)
    flash(
        _(
            "Revocation recorded. No more records will be requested from the family's doctors; "
            "what was already received stays with the case."
        )
    )
    if covered:
        # Counted, not named: some of the child's cases may be outside this user's queues.
        flash(
            _(
                "It also revoked the authorization on the same child's other cases: "
                "%(count)s.",
                count=len(covered),
            )
        )
    return _back(referral)


@bp.post("/referrals/<reference>/match-message")
@staff_required(*CARE_TEAM)
def match_message(reference: str) -> Response | tuple[str, int]:
    user = _user()
    referral = queue.get_referral_for(user, reference)
    if family_messages.message_of(referral) is None:
        audit.record(
            audit.DENIED, "family_message", referral.reference, outcome="denied", commit=True
        )
        raise NotFound()
    form = MatchMessageForm()
    if not form.validate_on_submit():
        return _rerender(referral, match_form=form)
    try:
        case = family_messages.match_by_hand(referral, user, form.match_reference.data or "")
    except family_messages.MatchRefused as error:
        family_messages.record_refusal(referral, user, error)
        form.match_reference.errors = [error.message]
        status = 409 if error.code == "already_matched" else 400
        return _rerender(referral, status, match_form=form, status_error=error.message)
    flash(
        _(
            "Message matched to case %(reference)s. It is listed on that case's page.",
            reference=format_reference(case.reference),
        )
    )
    return _back(referral)
