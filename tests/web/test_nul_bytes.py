"""A NUL byte anywhere in a URL is answered 400 with the normal error page, never a 500
(PostgreSQL refuses NUL in text). Form values keep their field errors (security.md §5 row 6)."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import IntegerConverter, Rule

from tests.staff.helpers import make_referral, make_user, sign_in

NUL = "\x00"


def _values(rule: Rule, reference: str) -> dict[str, object]:
    return {
        name: 1 if isinstance(converter, IntegerConverter) else reference
        for name, converter in rule._converters.items()
    }


def _url(app: Flask, rule: Rule, values: dict[str, object]) -> str:
    adapter = app.url_map.bind("intake.test")
    return adapter.build(rule.endpoint, values, method="GET")


def test_no_get_route_gives_a_500_for_a_nul_in_the_query_or_the_path(
    app: Flask, client: FlaskClient
) -> None:
    sign_in(app, client, make_user(app, "nul-admin@program.test", role="admin"))
    reference = make_referral(app)
    rules = [
        rule
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or ()) and "logout" not in rule.endpoint
    ]
    assert len(rules) > 20
    seen = 0
    for rule in rules:
        values = _values(rule, reference)
        urls = [_url(app, rule, values) + "?x=%00", _url(app, rule, values) + "?%00=x"]
        for name, converter in rule._converters.items():
            if not isinstance(converter, IntegerConverter):
                urls.append(_url(app, rule, {**values, name: f"a{NUL}b"}))
        for url in urls:
            response = client.get(url)
            assert response.status_code == 400, (url, response.status_code)
            assert "could not be understood" in response.get_data(as_text=True)
            seen += 1
    assert seen > 2 * len(rules)
    # Still signed in: nothing above was mistaken for a sign-out.
    assert client.get("/coordinator/").status_code == 200


def test_the_examples_from_the_audit(app: Flask, client: FlaskClient) -> None:
    sign_in(app, client, make_user(app, "nul-audit@program.test", role="admin"))
    reference = make_referral(app)
    for url in (
        "/coordinator/?q=%00",
        "/coordinator/?category=%00",
        f"/coordinator/referrals/{reference}/documents/%00",
        "/coordinator/admin/audit?resource=%00",
    ):
        assert client.get(url).status_code == 400, url


def test_a_nul_in_a_form_is_refused_except_as_a_field_error_on_the_public_forms(
    app: Flask, client: FlaskClient
) -> None:
    for data in ({f"e{NUL}mail": "a@program.test"}, {"email": f"a{NUL}@x.test", "password": "x"}):
        refused = client.post("/coordinator/login", data=data)
        assert refused.status_code == 400, data
        assert "could not be understood" in refused.get_data(as_text=True)
    # The public forms keep their own field error (the referral form's is in test_referral_form).
    lookup = client.post("/status", data={"reference": f"7K3M{NUL}Q9TX", "dob": "2016-03-14"})
    assert lookup.status_code in (200, 422)
    assert "could not be understood" not in lookup.get_data(as_text=True)
    assert client.post("/status", data={f"d{NUL}ob": "2016-03-14"}).status_code == 400
