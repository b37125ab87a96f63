"""Staff forms: every field validated on the server, CSRF on every one."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    MultipleFileField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from intake.domain import statuses
from intake.domain.reference import normalize_reference
from intake.forms.referral import as_choices
from intake.forms.validators import Email, MultiLine, SingleLine
from intake.models.staff import STAFF_ROLES
from intake.services import casework, routing
from intake.services.auth import looks_like_recovery_code
from intake.services.routing import CASE_KINDS


class CheckboxList(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class LoginForm(FlaskForm):
    email = StringField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])
    next = HiddenField()


class ResetRequestForm(FlaskForm):
    email = StringField(_l("Email"), validators=[DataRequired(), Length(max=254)])


class NewPasswordForm(FlaskForm):
    password = PasswordField(
        _l("New password"),
        validators=[DataRequired(), Length(max=256)],
        description=_l("At least 12 characters, not a common password."),
        render_kw={"autocomplete": "new-password"},
    )
    again = PasswordField(
        _l("The new password again"),
        validators=[DataRequired(), EqualTo("password", message=_l("The two do not match."))],
        render_kw={"autocomplete": "new-password"},
    )


class ConfirmForm(FlaskForm):
    password = PasswordField(_l("Your password"), validators=[DataRequired(), Length(max=256)])
    next = HiddenField()


class CodeForm(FlaskForm):
    code = StringField(
        _l("6-digit code from your authenticator app"),
        validators=[DataRequired(), Length(min=6, max=16)],
        description=_l("Lost your phone? Enter one of your recovery codes instead."),
        render_kw={"autocomplete": "one-time-code"},
    )

    def validate_code(self, field: Any) -> None:
        code = field.data or ""
        if not ("".join(code.split()).isdigit() or looks_like_recovery_code(code)):
            raise ValidationError(_l("Enter the 6 digits shown in your authenticator app."))


class RecoveryCodesForm(FlaskForm):
    pass


class LogoutForm(FlaskForm):
    pass


class AssignForm(FlaskForm):
    assignee = SelectField(_l("Coordinator"), choices=[], validate_choice=True)
    reviewer = SelectField(_l("Reviewing physician"), choices=[], validate_choice=True)


class NoteForm(FlaskForm):
    body = TextAreaField(_l("Internal note"), validators=[DataRequired(), MultiLine(max_len=4000)])
    # Decision 4: only a note that records contact acknowledges the case.
    contact = BooleanField(_l("This note records contact with the referrer or family"))
    channel = SelectField(
        _l("How"),
        choices=as_choices([("", _l("Choose")), *casework.CONTACT_CHANNELS.items()]),
        validate_choice=True,
        default="",
    )

    def validate_channel(self, field: Any) -> None:
        if self.contact.data and not field.data:
            raise ValidationError(_l("Say how you contacted them."))


class StatusForm(FlaskForm):
    # Staff pages are English only: plain strings, no catalogue entries.
    target = SelectField(_l("New status"), choices=[], validate_choice=True)
    reason_code = SelectField(
        "Reason (only for Not a candidate, Referred to another program or Withdrawn)",
        choices=as_choices([("", _l("No reason")), *statuses.DECISION_REASONS.items()]),
        validate_choice=True,
        default="",
    )
    # Final moves and decisions (statuses.CONFIRM_REQUIRED) need it; the view checks it after
    # the state machine, so a refused move says why first.
    confirm = BooleanField(
        "I confirm what this change does (needed for a decision or a final status)",
        description="What each of these does:",
    )

    def validate_reason_code(self, field: Any) -> None:
        if field.data and self.target.data not in statuses.REASON_ALLOWED:
            label = statuses.STATUS_LABELS.get(self.target.data or "", self.target.data)
            raise ValidationError(
                f"“{label}” is recorded without a reason: choose “No reason”. Reasons are "
                "for Not a candidate, Referred to another program or Withdrawn."
            )


class InfoRequestForm(FlaskForm):
    items = CheckboxList(_l("What is missing"), choices=[], validate_choice=True)
    audience = SelectField(_l("Ask"), choices=[], validate_choice=True)

    def validate_items(self, field: Any) -> None:
        if not field.data:
            raise ValidationError(_l("Pick at least one item to ask for."))


class NearMatchForm(FlaskForm):
    """A decision on one offered case (the page repeats it per candidate)."""

    candidate = HiddenField(validators=[DataRequired(), SingleLine(max_len=20)])


class BreakGlassForm(FlaskForm):
    reference = StringField(
        _l("Case reference"), validators=[DataRequired(), SingleLine(max_len=20)]
    )
    reason = TextAreaField(
        _l("Why you need this case now"), validators=[DataRequired(), MultiLine(max_len=500)]
    )

    def validate_reference(self, field: Any) -> None:
        if normalize_reference(field.data or "") is None:
            raise ValidationError(_l("Enter a case reference, like 7K3M-Q9TX-2HF."))

    def validate_reason(self, field: Any) -> None:
        if len((field.data or "").strip()) < 20:
            raise ValidationError(_l("Give the reason in a sentence (at least 20 characters)."))


class StaffDocumentsForm(FlaskForm):
    """Documents that reached the program by fax, email or post, attached by a coordinator."""

    document_slot = SelectField(
        _l("What they are"),
        choices=[],
        validate_choice=True,
        # No default: an insurance card left as "flow cytometry" would clear a missing item.
        validators=[DataRequired(message=_l("Choose what the documents are."))],
    )
    arrived_by = SelectField(
        _l("How they arrived"),
        choices=as_choices([(c, _l(label)) for c, label in casework.ARRIVAL_CHANNELS.items()]),
        validate_choice=True,
    )
    staff_documents = MultipleFileField(
        _l("Files (PDF, PNG or JPEG)"),
        description=_l("Scan a fax or paper copy to PDF first. Files are checked as on the forms."),
        render_kw={"accept": ".pdf,.png,.jpg,.jpeg,application/pdf,image/png,image/jpeg"},
    )


class UploadForm(FlaskForm):
    files = MultipleFileField(_l("Documents (PDF, PNG or JPEG)"))


# The longest answer to one question on the upload page.
ANSWER_MAX_LEN = 1000


def upload_form_for(questions: list[tuple[str, str]]) -> UploadForm:
    """The upload page's form with one required answer field ``answer_<code>`` for each
    requested item that is not a document (a score, a date, a yes/no...)."""

    class AnswerForm(UploadForm):
        pass

    for code, label in questions:
        setattr(
            AnswerForm,
            f"answer_{code}",
            TextAreaField(
                label,
                description=_l("If you do not know, write that you do not know."),
                validators=[
                    DataRequired(message=_l("This field is required.")),
                    MultiLine(max_len=ANSWER_MAX_LEN),
                ],
                render_kw={"rows": 2},
            ),
        )
    return AnswerForm()


class UserForm(FlaskForm):
    email = StringField(_l("Email"), validators=[DataRequired(), Email()])
    display_name = StringField(_l("Name"), validators=[Optional(), SingleLine(max_len=100)])
    role = SelectField(_l("Role"), choices=as_choices([(r, r) for r in STAFF_ROLES]))
    queues = CheckboxList(
        _l("Queues"), choices=as_choices([(k, k.replace("_", " ")) for k in CASE_KINDS])
    )


class UserActionForm(FlaskForm):
    action = SelectField(
        _l("Action"),
        choices=as_choices(
            [
                ("deactivate", "deactivate"),
                ("activate", "activate"),
                ("reset_totp", "reset"),
                ("change_role", "change role"),
                ("set_queues", "set queues"),
                ("invite", "send the invitation again"),
            ]
        ),
    )
    # Only read for change_role.
    role = SelectField(
        _l("Role"),
        choices=as_choices([("", ""), *[(r, r) for r in STAFF_ROLES]]),
        validators=[Optional()],
    )


class AlertAckForm(FlaskForm):
    """Acknowledge alerts (decision 7): one row's id, or every unacknowledged one shown."""

    ALL_SHOWN_MAX = 200
    ids = HiddenField(validators=[DataRequired()])

    def validate_ids(self, field: HiddenField) -> None:
        parts = str(field.data or "").split()
        if not parts or len(parts) > self.ALL_SHOWN_MAX:
            raise ValidationError("Pick alerts to acknowledge.")
        if not all(p.isdigit() and len(p) <= 12 for p in parts):
            raise ValidationError("Pick alerts to acknowledge.")

    def alert_ids(self) -> list[int]:
        return [int(p) for p in str(self.ids.data or "").split()]


class RoutingForm(FlaskForm):
    """Which new cases and escalations one address gets, in one role (decision 2)."""

    email = StringField(
        _l("Email address"),
        validators=[DataRequired()],
        # Lower case, like staff accounts: one person, one row.
        filters=[lambda value: routing.normalize_email(value) if isinstance(value, str) else value],
    )
    role = SelectField(
        _l("Role"),
        choices=as_choices([(r, routing.ROLE_LABELS[r]) for r in routing.ROUTE_ROLES]),
        validate_choice=True,
    )
    cells = CheckboxList(
        _l("Cases"),
        choices=as_choices(
            [
                (f"{kind}:{priority}", routing.cell_label(kind, priority))
                for kind, priority in routing.ALL_CELLS
            ]
        ),
        validate_choice=True,
    )
    # Set by the "add an address" form, where switching nothing on is a mistake; a row's own
    # form may switch everything off.
    adding = HiddenField()

    def validate_email(self, field: Any) -> None:
        if self.adding.data:
            Email()(self, field)
        elif not routing.is_routed(self.role.data or "", field.data or ""):
            # A row's own form names an address already in the table, whatever its shape (the
            # seed may hold e.g. coordinators@localhost); anything else is added below.
            raise ValidationError("That address is not in the routing table: add it below.")

    def validate_cells(self, field: Any) -> None:
        if self.adding.data and not field.data:
            raise ValidationError("Choose at least one kind of case and priority.")

    def chosen_cells(self) -> set[tuple[str, str]]:
        return {tuple(value.split(":", 1)) for value in self.cells.data or []}  # type: ignore[misc]
