"""`/status`: reference + date of birth in the POST body, one answer for every kind of
mismatch, a lock after 5 wrong birth dates, and rate limits per IP and per reference."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from intake import create_app
from intake.domain import statuses
from intake.domain.lookup_guard import GuardState, after_failure, is_locked
from intake.domain.reference import format_reference, new_reference
from intake.extensions import db
from intake.models import FamilyMessage, Referral, StatusLookupGuard
from intake.models.family import MESSAGE_STATES
from intake.public.status import FAMILY_STATUS, MESSAGE_STATE
from intake.services import status_lookup
from tests import services
from tests.families import family_data
from tests.referral_data import PATIENT_DOB, PATIENT_GIVEN
from tests.staff.helpers import csrf_token, make_referral

OTHER_DOB = "2014-07-02"
NOT_FOUND = "We could not show a status for these details"


def lookup(
    client: FlaskClient, reference: str, dob: str, ip: str | None = None, **fields: Any
) -> Any:
    environ = {"REMOTE_ADDR": ip} if ip else {}
    return client.post(
        "/status", data={"reference": reference, "dob": dob, **fields}, environ_base=environ
    )


def masked(html: str) -> str:
    """The page without its CSRF token, which is signed with the current second."""
    return re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "csrf", html)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[datetime]]:
    now = [datetime(2026, 11, 25, 15, 0, tzinfo=UTC)]
    monkeypatch.setattr(status_lookup, "_clock", lambda: now[0])
    yield now


def test_right_pair_shows_a_plain_status_and_nothing_clinical(
    app: Flask, client: FlaskClient
) -> None:
    reference = make_referral(app)
    typed = format_reference(reference).lower().replace("-", " ")
    response = lookup(client, typed, PATIENT_DOB)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert format_reference(reference) in html
    meaning, next_step = FAMILY_STATUS[statuses.UNDER_REVIEW]
    assert str(meaning) in html and str(next_step) in html
    assert app.config["PROGRAM_PHONE"] in html and app.config["URGENT_PHONE"] in html
    # The reference is random and could hold "P1"; the page is checked without it.
    shown = html.replace(format_reference(reference), " ")
    for secret in (PATIENT_GIVEN, "Núñez", PATIENT_DOB, "B-ALL", "likely", "P1", "P2"):
        assert secret not in shown
    assert response.headers["Cache-Control"] == "no-store"


def test_every_status_has_plain_language_text() -> None:
    assert set(FAMILY_STATUS) == set(statuses.ALL_STATUSES)


def test_form_posts_reference_and_dob_in_the_body(client: FlaskClient) -> None:
    html = client.get("/status").get_data(as_text=True)
    form = re.search(r'<form method="post" action="([^"]+)"', html)
    assert form and form.group(1) == "/status"
    assert 'for="reference"' in html and 'for="dob"' in html


def test_wrong_dob_wrong_reference_and_someone_elses_reference_read_the_same(
    app_config: dict[str, Any],
) -> None:
    app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    mine = make_referral(app)
    theirs = make_referral(app, patient_dob=OTHER_DOB, patient_given_name="Ana")
    unknown = new_reference()
    client = app.test_client()
    token = csrf_token(client.get("/status").get_data(as_text=True))
    answers = [
        lookup(client, mine, OTHER_DOB, csrf_token=token),  # wrong date of birth
        lookup(client, unknown, PATIENT_DOB, csrf_token=token),  # no such reference
        lookup(client, theirs, PATIENT_DOB, csrf_token=token),  # someone else's reference
    ]
    bodies = {masked(r.get_data(as_text=True)) for r in answers}
    assert {r.status_code for r in answers} == {200}
    assert len(bodies) == 1
    body = bodies.pop()
    assert NOT_FOUND in body
    assert format_reference(mine) not in body and OTHER_DOB not in body
    right = lookup(client, mine, PATIENT_DOB, csrf_token=token)
    assert right.status_code == 200 and format_reference(mine) in right.get_data(as_text=True)
    _dispose(app)


def test_sixth_attempt_is_refused_even_with_the_right_dob_until_the_lock_expires(
    app: Flask, client: FlaskClient, clock: list[datetime]
) -> None:
    reference = make_referral(app)
    refused = masked(lookup(client, reference, OTHER_DOB).get_data(as_text=True))
    for _attempt in range(4):
        clock[0] += timedelta(seconds=30)
        assert masked(lookup(client, reference, OTHER_DOB).get_data(as_text=True)) == refused
    with app.app_context():
        guard = db.session.get(StatusLookupGuard, reference)
        assert guard is not None and guard.failed_attempts == 5 and guard.locked_until

    clock[0] += timedelta(seconds=30)
    sixth = lookup(client, reference, PATIENT_DOB)
    assert sixth.status_code == 200 and masked(sixth.get_data(as_text=True)) == refused

    clock[0] += timedelta(minutes=app.config["STATUS_LOCK_MINUTES"] - 1)
    assert NOT_FOUND in lookup(client, reference, PATIENT_DOB).get_data(as_text=True)

    clock[0] += timedelta(minutes=1)
    unlocked = lookup(client, reference, PATIENT_DOB).get_data(as_text=True)
    assert NOT_FOUND not in unlocked and format_reference(reference) in unlocked


def test_a_right_answer_clears_the_count(
    app: Flask, client: FlaskClient, clock: list[datetime]
) -> None:
    reference = make_referral(app)
    for _round in range(2):
        for _attempt in range(4):
            assert NOT_FOUND in lookup(client, reference, OTHER_DOB).get_data(as_text=True)
        assert NOT_FOUND not in lookup(client, reference, PATIENT_DOB).get_data(as_text=True)


def test_unknown_references_are_locked_the_same_way(
    app: Flask, client: FlaskClient, clock: list[datetime]
) -> None:
    unknown = new_reference()
    for _attempt in range(5):
        lookup(client, unknown, PATIENT_DOB)
    with app.app_context():
        guard = db.session.get(StatusLookupGuard, unknown)
        assert guard is not None and guard.locked_until is not None
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Referral)) == 0


def test_malformed_input_gets_field_errors_linked_from_the_summary(client: FlaskClient) -> None:
    response = lookup(client, "ABCD-EFGH-JK", "2016-02-30")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'href="#reference"' in html and 'href="#dob"' in html
    assert "Check the reference" in html and "This date does not exist" in html
    assert 'aria-invalid="true"' in html
    wrong_format = lookup(client, "ABCD-EFGH-JK", "14/03/2016").get_data(as_text=True)
    assert "YYYY-MM-DD" in wrong_format and "does not exist" not in wrong_format


def test_missing_csrf_token_is_refused_with_the_form_again(app_config: dict[str, Any]) -> None:
    app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    client = app.test_client()
    reference = make_referral(app)
    response = lookup(client, reference, PATIENT_DOB)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "session expired" in html and format_reference(reference) not in html
    _dispose(app)


@pytest.fixture(params=["memory", "redis"])
def limiter_storage(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "memory":
        return {"RATELIMIT_STORAGE_URI": "memory://"}
    services.require(services.redis_available(), "Redis")
    # A private key prefix: the shared Redis keeps counters of other runs apart.
    return {
        "RATELIMIT_STORAGE_URI": services.REDIS_URL,
        "RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}",
    }


def test_too_many_lookups_from_one_ip_get_429_with_retry_after(
    app_config: dict[str, Any], limiter_storage: dict[str, Any]
) -> None:
    app = create_app(
        {
            **app_config,
            **limiter_storage,
            "RATELIMIT_ENABLED": True,
            "STATUS_RATE_LIMIT": "3 per minute",
        }
    )
    client = app.test_client()
    codes = [lookup(client, new_reference(), PATIENT_DOB).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    limited = lookup(client, new_reference(), PATIENT_DOB)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert "Too many requests" in limited.get_data(as_text=True)
    assert client.get("/status").status_code == 200  # reading the form is not limited
    _dispose(app)


def test_too_many_lookups_for_one_reference_get_429_from_any_ip(
    app_config: dict[str, Any], limiter_storage: dict[str, Any]
) -> None:
    app = create_app(
        {
            **app_config,
            **limiter_storage,
            "RATELIMIT_ENABLED": True,
            "STATUS_RATE_LIMIT": "100 per minute",
            "STATUS_REFERENCE_RATE_LIMIT": "2 per hour",
        }
    )
    client = app.test_client()
    target = new_reference()
    spelled = [target, format_reference(target), format_reference(target).lower()]
    codes = [
        lookup(client, ref, PATIENT_DOB, ip=f"198.51.100.{i}") for i, ref in enumerate(spelled)
    ]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert int(codes[-1].headers["Retry-After"]) > 0
    assert lookup(client, new_reference(), PATIENT_DOB).status_code == 200
    # Mistyped references from one address do not use up anyone else's attempts.
    for _ in range(3):
        lookup(client, "typo", PATIENT_DOB, ip="203.0.113.9")
    other = lookup(client, "typo", PATIENT_DOB, ip="203.0.113.10")
    assert other.status_code == 422
    _dispose(app)


def test_guard_rules() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    lock_for = timedelta(minutes=30)
    state = GuardState()
    for i in range(5):
        assert not is_locked(state, start)
        at = start + timedelta(minutes=i)
        state = after_failure(state, at, max_failures=5, lock_for=lock_for)
    assert state.failed_attempts == 5 and is_locked(state, start + timedelta(minutes=30))
    assert not is_locked(state, start + timedelta(minutes=34))
    # After the lock has run out, counting starts again from one.
    later = after_failure(state, start + timedelta(minutes=35), max_failures=5, lock_for=lock_for)
    assert later.failed_attempts == 1 and later.locked_until is None
    # Old failures (a quiet period as long as the lock) no longer count.
    quiet = after_failure(
        GuardState(4, start, None), start + lock_for, max_failures=5, lock_for=lock_for
    )
    assert quiet.failed_attempts == 1


def _dispose(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _submit_family_form(client: FlaskClient, url: str, data: dict[str, Any]) -> str:
    form = {"submission_id": str(uuid.uuid4()), **data}
    response = client.post(url, data=form, content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)[:400]
    with client.session_transaction() as session:
        return str(session["confirmed_reference"])


def test_a_family_looks_up_a_second_opinion_request_and_a_message(
    app: Flask, client: FlaskClient
) -> None:
    request_ref = _submit_family_form(client, "/second-opinion", family_data.second_opinion())
    found = lookup(client, format_reference(request_ref), family_data.CHILD_DOB)
    html = found.get_data(as_text=True)
    assert str(FAMILY_STATUS[statuses.RECEIVED][0]) in html
    for secret in family_data.FAMILY_PHI:
        assert secret not in html

    message_ref = _submit_family_form(client, "/message", family_data.message())
    html = lookup(client, message_ref, family_data.CHILD_DOB).get_data(as_text=True)
    assert str(MESSAGE_STATE["new"][0]) in html
    with app.app_context():
        db.session.execute(sa.update(FamilyMessage).values(state="answered"))
        db.session.commit()
    html = lookup(client, message_ref, family_data.CHILD_DOB).get_data(as_text=True)
    assert str(MESSAGE_STATE["answered"][0]) in html
    assert NOT_FOUND in lookup(client, message_ref, PATIENT_DOB).get_data(as_text=True)


def test_every_message_state_has_plain_language_text() -> None:
    assert set(MESSAGE_STATE) == set(MESSAGE_STATES)
