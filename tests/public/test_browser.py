"""Public pages in a real browser (Debian's chromium through Playwright) against gunicorn and a
Celery worker on PostgreSQL + Redis, with a real SMTP server:

* a parent asks for a second opinion, filling the form by its labels, then looks the request up
  on the status page;
* axe-core (bundled with axe-playwright-python, no network) finds no serious or critical WCAG
  2.1 A/AA violation on any public page, in English and in Spanish, including forms showing
  their errors, confirmations, status answers and error pages;
* the keyboard alone gets through the status lookup, focus is always visible, and the error
  summary's links take focus to their fields;
* at 320 CSS pixels wide no public page scrolls sideways.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect

from intake.domain.reference import format_reference, new_reference
from tests import services
from tests.families import family_data
from tests.referral_data import valid_referral
from tests.stack import SmtpServer, Stack, wait_for
from tests.staff.conftest import pg_stack, smtp  # noqa: F401 (fixtures)
from tests.staff.live import csrf
from tests.staff.test_browser_story import browser  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

LANGUAGES = ("en", "es")
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}
# Pages anyone can open without having sent anything (410: a spent or unknown upload link).
OPEN_PAGES = {
    "/": 200,
    "/refer": 200,
    "/second-opinion": 200,
    "/message": 200,
    "/status": 200,
    "/upload/thanks": 200,
    "/upload/not-a-real-link": 410,
    "/no-such-page": 404,
}
# Forms and the button that sends them; sent empty they come back with an error summary.
FORMS = {
    "/refer": "Send referral",
    "/second-opinion": "Send my request",
    "/message": "Send my message",
    "/status": "Check status",
}
BUTTONS_ES = {
    "Send referral": "Enviar derivación",
    "Send my request": "Enviar mi solicitud",
    "Send my message": "Enviar mi mensaje",
    "Check status": "Consultar estado",
}


@pytest.fixture(scope="module")
def web(pg_template: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One gunicorn for the page checks (they only read pages and send forms)."""
    services.require(pg_template is not None, "PostgreSQL")
    services.require(services.redis_available(), "Redis")
    mail = SmtpServer().start()
    stack = Stack(
        services.create_database(template=pg_template),
        services.REDIS_URL,
        tmp_path_factory.mktemp("public-web"),
        mail.port,
    )
    try:
        stack.flask("seed-routing")
        yield stack.start_web(workers=2)
    finally:
        stack.stop()
        mail.stop()
        services.drop_database(stack.database_url)


def _context(browser: Browser, language: str, **options: Any) -> BrowserContext:  # noqa: F811
    context = browser.new_context(locale="es-ES" if language == "es" else "en-US", **options)
    context.set_default_timeout(15_000)
    return context


def _button(language: str, english: str) -> str:
    return BUTTONS_ES[english] if language == "es" else english


def _submitted_session(base: str, url: str, answers: dict[str, Any], language: str) -> str:
    """Send a form over HTTP like a browser; returns the session cookie of its confirmation."""
    session = requests.Session()
    session.get(f"{base}/?lang={language}", timeout=10)
    page = session.get(base + url, timeout=10)
    submission = re.search(r'name="submission_id" type="hidden" value="([^"]+)"', page.text)
    assert submission
    form = {**answers, "csrf_token": csrf(page.text), "submission_id": submission.group(1)}
    response = session.post(base + url, data=form, timeout=30)
    assert response.status_code == 200 and response.url != base + url, response.text[:500]
    return str(session.cookies.get("session"))


def _every_public_page(base: str, context: BrowserContext, language: str) -> Iterator[Page]:
    """Each public page in each state a visitor can see, ready to be checked."""
    page = context.new_page()
    page.goto(f"{base}/?lang={language}")
    for path, code in OPEN_PAGES.items():
        response = page.goto(base + path)
        assert response is not None and response.status == code, path
        yield page
    for path, button in FORMS.items():
        page.goto(base + path)
        page.get_by_role("button", name=_button(language, button)).click()
        expect(page.locator("#error-summary")).to_be_visible()
        yield page
    page.goto(f"{base}/status")
    page.locator("#reference").fill(format_reference(new_reference()))
    page.locator("#dob").fill("2016-03-14")
    page.get_by_role("button", name=_button(language, "Check status")).click()
    expect(page.locator("#lookup-result")).to_be_visible()
    yield page
    confirmations = (
        ("/refer", valid_referral(), "/refer/submitted"),
        ("/second-opinion", family_data.second_opinion(), "/second-opinion/submitted"),
        ("/message", family_data.message(), "/message/sent"),
    )
    for form_path, answers, confirmation in confirmations:
        cookie = _submitted_session(base, form_path, answers, language)
        context.add_cookies([{"name": "session", "value": cookie, "url": base}])
        page.goto(base + confirmation)
        assert page.url == base + confirmation
        yield page
        if form_path == "/second-opinion":
            reference = page.locator(".reference").inner_text()
            page.goto(f"{base}/status")
            page.locator("#reference").fill(reference)
            page.locator("#dob").fill(family_data.CHILD_DOB)
            page.get_by_role("button", name=_button(language, "Check status")).click()
            expect(page.locator(".status-meaning")).to_be_visible()
            yield page


def test_a_parent_asks_for_a_second_opinion_by_the_labels_and_checks_its_status(
    pg_stack: Stack,  # noqa: F811
    smtp: SmtpServer,  # noqa: F811
    browser: Browser,  # noqa: F811
) -> None:
    base = pg_stack.start_web()
    pg_stack.start_worker()
    page = _context(browser, "en").new_page()
    page.goto(f"{base}/")
    page.get_by_role("link", name="Ask for a second opinion").click()

    name = family_data.PARENT_NAME
    page.get_by_label(re.compile(r"^Your full name")).fill(name)
    page.get_by_label(re.compile(r"^Your relationship to the child")).select_option(label="Mother")
    page.get_by_label(re.compile(r"^I am the child's parent or legal guardian")).check()
    page.get_by_role("textbox", name="Email", exact=True).fill(family_data.PARENT_EMAIL)
    page.get_by_label(re.compile(r"^You may email me")).check()
    page.get_by_role("textbox", name=re.compile(r"^Phone")).fill("615-555-0100")
    page.get_by_role("checkbox", name="Email", exact=True).check()
    page.get_by_label(re.compile(r"^Language you prefer")).select_option(label="English")
    page.get_by_label(re.compile(r"^Child's first \(given\) name")).fill(family_data.CHILD_GIVEN)
    page.get_by_label(re.compile(r"^Child's last \(family\) name")).fill(family_data.CHILD_FAMILY)
    page.get_by_label(re.compile(r"^Child's date of birth")).fill(family_data.CHILD_DOB)
    page.get_by_label(re.compile(r"^What illness does your child have")).select_option(
        label="Leukemia: B-cell acute lymphoblastic leukemia (B-ALL), the most common kind"
    )
    page.get_by_label("Tell us about the illness in your own words").fill(
        "Relapsed in October after chemotherapy."
    )
    page.get_by_label("Hospital where your child is treated now").fill(
        "Lakeside Children's Hospital"
    )
    page.get_by_label("Name of your child's cancer doctor (oncologist)").fill(
        "Dr. Hannah Whitfield"
    )
    page.get_by_label("The doctor's phone").fill("615-555-0142")
    page.get_by_label("The doctor's email").fill("h.whitfield@lakeside-childrens.org")
    page.get_by_label("Please ask my child's doctors for the records").check()
    page.get_by_label(re.compile(r"^I authorize the release of my child's medical records")).check()
    page.get_by_label(re.compile(r"^Type your full name to sign")).fill(name)
    page.get_by_role("button", name="Send my request").click()

    expect(page.locator("h1")).to_have_text("We received your request")
    shown = page.locator(".reference").inner_text().strip()
    page.get_by_role("link", name="Check the status of your request").click()
    page.get_by_label(re.compile(r"^Reference number")).fill(shown.lower().replace("-", " "))
    page.get_by_label(re.compile(r"^Patient's date of birth")).fill(family_data.CHILD_DOB)
    page.get_by_role("button", name="Check status").click()
    expect(page.locator("h1")).to_have_text("Status of your request")
    expect(page.locator(".reference-inline")).to_have_text(shown)
    expect(page.locator(".status-meaning")).to_have_text(
        re.compile(r"We have received the request\.|Our team is reviewing the request\.")
    )

    def acknowledgement() -> Any:
        return next((m for m in smtp.messages if shown in str(m["Subject"])), None)

    email = wait_for(acknowledgement, 60, "the family's acknowledgement email")
    body = email.get_body(preferencelist=("plain",)).get_content()
    assert "http://intake.test/status" in body and shown in body
    for secret in family_data.FAMILY_PHI:
        assert secret not in body and secret not in str(email["Subject"])


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_public_page_passes_axe_in_both_languages(
    web: str,
    browser: Browser,  # noqa: F811
    language: str,
) -> None:
    axe = Axe()
    context = _context(browser, language)
    checked, problems = 0, []
    for page in _every_public_page(web, context, language):
        assert page.locator("html").get_attribute("lang") == language, page.url
        results = axe.run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
        for violation in results.response["violations"]:
            if violation["impact"] in BLOCKING:
                targets = [node["target"] for node in violation["nodes"]][:3]
                problems.append(f"{page.url}: {violation['id']} ({violation['impact']}) {targets}")
        checked += 1
    assert checked == len(OPEN_PAGES) + len(FORMS) + 5
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_public_page_scrolls_sideways_at_320_pixels(
    web: str,
    browser: Browser,  # noqa: F811
    language: str,
) -> None:
    context = _context(browser, language, viewport={"width": 320, "height": 640})
    too_wide = []
    for page in _every_public_page(web, context, language):
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        if widths[0] > widths[1]:
            too_wide.append(f"{page.url}: {widths[0]}px wide")
    assert too_wide == []


FOCUS_STYLE = r"""() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  // The colour around the element: the first ancestor background that is not transparent.
  let behind = "rgb(255, 255, 255)";
  for (let node = el.parentElement; node; node = node.parentElement) {
    const colour = getComputedStyle(node).backgroundColor;
    if (colour !== "transparent" && !/, 0\)$/.test(colour)) { behind = colour; break; }
  }
  return {id: el.id, tag: el.tagName.toLowerCase(), outline: style.outlineStyle,
          width: parseFloat(style.outlineWidth), shadow: style.boxShadow,
          outlineColor: style.outlineColor, behind: behind,
          onScreen: box.width > 0 && box.height > 0 && box.bottom > 0 && box.right > 0
                    && box.top < innerHeight && box.left < innerWidth};
}"""
RGB = re.compile(r"rgba?\((\d+), (\d+), (\d+)(?:, ([\d.]+))?\)")


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: tuple[int, int, int], other: tuple[int, int, int]) -> float:
    light, dark = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _opaque_colours(css: str) -> list[tuple[int, int, int]]:
    return [
        (int(r), int(g), int(b))
        for r, g, b, alpha in RGB.findall(css)
        if alpha == "" or float(alpha) > 0.99
    ]


def _assert_focus_contrast(focus: dict[str, Any]) -> None:
    """WCAG 1.4.11: the focus indicator has a part of at least 3:1 against what surrounds it,
    and its two tones (outline and ring) are at least 3:1 against each other."""
    outline = _opaque_colours(focus["outlineColor"]) if focus["outline"] != "none" else []
    ring = _opaque_colours(focus["shadow"]) if focus["shadow"] != "none" else []
    behind = _opaque_colours(focus["behind"])[0]
    best = max((contrast(colour, behind) for colour in outline + ring), default=0.0)
    assert best >= 3, f"focus indicator {best:.2f}:1 against {behind}: {focus}"
    if outline and ring:
        assert contrast(outline[0], ring[0]) >= 3, focus


def _focused(page: Page) -> dict[str, Any]:
    return dict(page.evaluate(FOCUS_STYLE))


def _assert_focus_visible(page: Page) -> dict[str, Any]:
    focus = _focused(page)
    assert focus["onScreen"], focus
    assert (focus["outline"] != "none" and focus["width"] >= 2) or focus["shadow"] != "none", focus
    return focus


def _tab_to(page: Page, element_id: str, limit: int = 25) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if _assert_focus_visible(page)["id"] == element_id:
            return
    raise AssertionError(f"Tab never reached #{element_id}")


def test_the_status_lookup_works_with_the_keyboard_alone(
    web: str,
    browser: Browser,  # noqa: F811
) -> None:
    page = _context(browser, "en").new_page()
    page.goto(f"{web}/status")
    page.keyboard.press("Tab")
    assert _assert_focus_visible(page)["tag"] == "a"  # the skip link comes first
    page.keyboard.press("Enter")
    assert _focused(page)["id"] == "main"

    _tab_to(page, "reference")
    page.keyboard.type("ABCD-EFGH-JKL")
    _tab_to(page, "dob")
    page.keyboard.type("2016-02-30")
    page.keyboard.press("Tab")
    assert _assert_focus_visible(page)["tag"] == "button"
    page.keyboard.press("Enter")

    summary = page.locator("#error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    for field in ("reference", "dob"):
        link = summary.locator(f'a[href="#{field}"]')
        link.focus()
        _assert_focus_visible(page)
        page.keyboard.press("Enter")
        expect(page.locator(f"#{field}")).to_be_focused()
        _assert_focus_visible(page)
        summary.focus()

    page.locator("#reference").fill(format_reference(new_reference()))
    page.locator("#dob").fill("2016-03-14")
    page.locator("#dob").press("Enter")
    expect(page.locator("#lookup-result")).to_be_focused()


def test_an_error_summary_link_to_a_group_of_choices_focuses_its_first_choice(
    web: str,
    browser: Browser,  # noqa: F811
) -> None:
    page = _context(browser, "en").new_page()
    page.goto(f"{web}/refer")
    # A choice the question does not offer (as a tampered or stale form would send).
    page.evaluate(
        """() => { const choice = document.getElementById("is_treating_oncologist-0");
                   choice.value = "maybe"; choice.checked = true; }"""
    )
    page.get_by_role("button", name="Send referral").click()
    link = page.locator('#error-summary a[href="#is_treating_oncologist"]')
    expect(link).to_be_visible()
    expect(page.locator("fieldset#is_treating_oncologist")).to_have_count(1)
    link.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#is_treating_oncologist-0")).to_be_focused()
    _assert_focus_contrast(_assert_focus_visible(page))


def test_language_switch_by_keyboard_keeps_spanish_across_pages(
    web: str,
    browser: Browser,  # noqa: F811
) -> None:
    page = _context(browser, "en").new_page()
    page.goto(f"{web}/status")
    switch = page.get_by_role("link", name="Español")
    switch.focus()
    _assert_focus_visible(page)
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Consultar el estado de una solicitud")
    page.goto(f"{web}/second-opinion?{uuid.uuid4().hex[:4]}=1")
    expect(page.locator("h1")).to_have_text("Pida una segunda opinión para su hijo/a")


@pytest.mark.parametrize("path", ["/", "/refer", "/second-opinion", "/message", "/status"])
def test_every_control_shows_where_the_keyboard_is(
    web: str,
    browser: Browser,  # noqa: F811
    path: str,
) -> None:
    """Tab through the whole page: each stop is on screen with a visible focus indicator of
    enough contrast, and the keyboard gets out of the page again (no trap)."""
    page = _context(browser, "en").new_page()
    page.goto(web + path)
    seen: list[str] = []
    for _ in range(400):
        page.keyboard.press("Tab")
        focus = _focused(page)
        if focus["tag"] == "body":
            break
        _assert_focus_contrast(_assert_focus_visible(page))
        seen.append(focus["id"] or focus["tag"])
    else:
        raise AssertionError(f"the keyboard never left {path}: {seen[-5:]}")
    assert len(seen) >= 3


def _fill_the_second_opinion_form(page: Page) -> None:
    name = family_data.PARENT_NAME
    page.get_by_label(re.compile(r"^Your full name")).fill(name)
    page.get_by_label(re.compile(r"^Your relationship to the child")).select_option(label="Mother")
    page.get_by_label(re.compile(r"^I am the child's parent or legal guardian")).check()
    page.get_by_role("textbox", name="Email", exact=True).fill(family_data.PARENT_EMAIL)
    page.get_by_role("textbox", name=re.compile(r"^Phone")).fill("615-555-0100")
    page.get_by_label(re.compile(r"^Child's first \(given\) name")).fill(family_data.CHILD_GIVEN)
    page.get_by_label(re.compile(r"^Child's last \(family\) name")).fill(family_data.CHILD_FAMILY)
    page.get_by_label(re.compile(r"^Child's date of birth")).fill(family_data.CHILD_DOB)
    page.get_by_label(re.compile(r"^What illness does your child have")).select_option(
        label="Leukemia: B-cell acute lymphoblastic leukemia (B-ALL), the most common kind"
    )
    page.get_by_label(re.compile(r"^I authorize the release of my child's medical records")).check()
    page.get_by_label(re.compile(r"^Type your full name to sign")).fill(name)


def test_sending_again_after_the_back_button_makes_no_second_request(
    web: str,
    browser: Browser,  # noqa: F811
) -> None:
    """Security.md F10 in a real browser: the form page is not cached, so Back loads it with a
    new submission id; forms.js puts back the id this tab sent, so the same answers sent again
    are the same request, not a second case with its own emails."""
    page = _context(browser, "en").new_page()
    page.goto(f"{web}/second-opinion")
    _fill_the_second_opinion_form(page)
    page.get_by_role("button", name="Send my request").click()
    expect(page.locator("h1")).to_have_text("We received your request")
    first = page.locator(".reference").inner_text().strip()

    page.go_back()
    expect(page.get_by_role("button", name="Send my request")).to_be_visible()
    _fill_the_second_opinion_form(page)  # whatever the browser kept, the same answers
    page.get_by_role("button", name="Send my request").click()
    expect(page.locator("h1")).to_have_text("We received your request")
    assert page.locator(".reference").inner_text().strip() == first


def test_switching_language_on_a_form_keeps_what_was_typed(
    web: str,
    browser: Browser,  # noqa: F811
) -> None:
    page = _context(browser, "en").new_page()
    page.goto(f"{web}/second-opinion?lang=en")
    page.get_by_label(re.compile(r"^Your full name")).fill("María O'Brien")
    page.get_by_label(re.compile(r"^Your relationship to the child")).select_option(label="Mother")
    page.get_by_label(re.compile(r"^I am the child's parent or legal guardian")).check()
    page.get_by_role("button", name="Send my request").click()  # refused: much is missing
    expect(page.locator("#error-summary")).to_be_visible()
    page.get_by_role("link", name="Español").click()
    expect(page.get_by_role("button", name="Enviar mi solicitud")).to_be_visible()
    expect(page.locator("#requester_name")).to_have_value("María O'Brien")
    expect(page.locator("#requester_relationship")).to_have_value("mother")
    expect(page.locator("#legal_authority")).to_be_checked()
    # Kept for that one page load only.
    page.reload()
    expect(page.locator("#requester_name")).to_have_value("")
